"""The derived request index: what a request's row holds, computed from its chained records only.

The writer and ``verify`` both call these functions, so "the index agrees with the chain" has one
definition: a request's row is its request record folded with each of its response records in order
(decision the strongest seen, tools and rules the union, status, latency, usage and body from the
latest response).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from gateway.findings import stronger

__all__ = ["RESPONSE_COLUMNS", "clip", "columns", "fold_response", "request_row", "row_from_columns"]


def clip(text: str | None, limit: int = 256) -> str | None:
    """``text`` as an indexed column can hold it: at most ``limit`` characters, no NUL (PostgreSQL refuses it)."""
    if text is None:
        return None
    return text.replace("\x00", "\ufffd")[:limit]


def _bounded(value: int | None, limit: int = 2**63 - 1) -> int | None:
    """An integer from the wire as a column can hold it (a bogus size or token count must not fail a commit)."""
    if value is None:
        return None
    return max(-limit - 1, min(int(value), limit))


def _status(value: int) -> int | None:
    return value if 0 <= value <= 999 else None


def _names(values: Iterable[str | None]) -> list[str]:
    return sorted({clipped for v in values if v and (clipped := clip(v))})


def request_row(record_id: int, instance_id: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """The ``audit_requests`` columns of a request record, with ``tool_names`` and ``rule_names`` lists."""
    body = data.get("body")
    return {
        "id": record_id,
        "request_id": clip(data["request_id"], 128),
        "instance_id": instance_id,
        "at": at,
        "agent": clip(data["agent"]),
        "session": clip(data["session"]),
        "direction": clip(data["direction"], 8),
        "protocol": clip(data["protocol"], 32),
        "method": clip(data["method"], 16),
        "host": clip(data["host"]),
        "path": clip(data["path"], 8192),
        "model": clip(data.get("model")),
        "decision": data["decision"],
        "request_decision": data["decision"],
        "request_size": _bounded(data["body_size"]),
        "request_body": body["stored"] if body else None,
        "tool_names": _names([data.get("tool_call")]),
        "rule_names": _names(f["rule"] for f in data["findings"]),
        "response_id": None,
        "response_decision": None,
        "status": None,
        "latency_us": None,
        "response_size": None,
        "response_body": None,
        "prompt_tokens": None,
        "completion_tokens": None,
    }


RESPONSE_COLUMNS = ("decision", "tools", "rules", "response_id", "response_decision", "status", "latency_us",
                    "response_size", "response_body", "prompt_tokens", "completion_tokens")
"""The ``audit_requests`` columns ``fold_response`` changes: the only ones a response's update writes, so that
the indexes on the others (time, agent, session, host, model, request body) are not rewritten."""


def fold_response(row: dict[str, Any], record_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """``row`` completed by one more response record."""
    body, usage = data.get("body"), data.get("usage")
    previous = row["response_decision"]
    response_decision = data["decision"] if previous is None else stronger(previous, data["decision"])
    return row | {
        "decision": stronger(row["decision"], data["decision"]),
        "tool_names": _names([*row["tool_names"], *data["tool_calls"]]),
        "rule_names": _names([*row["rule_names"], *(f["rule"] for f in data["findings"])]),
        "response_id": record_id,
        "response_decision": response_decision,
        "status": _status(data["status"]),
        "latency_us": _bounded(data["latency_us"]),
        "response_size": _bounded(data["body_size"]),
        "response_body": body["stored"] if body else None,
        "prompt_tokens": _bounded(usage["prompt_tokens"]) if usage else None,
        "completion_tokens": _bounded(usage["completion_tokens"]) if usage else None,
    }


def columns(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as ``audit_requests`` columns: the name lists become the space-separated display columns."""
    out = {k: v for k, v in row.items() if k not in ("tool_names", "rule_names")}
    return out | {"tools": " ".join(row["tool_names"]), "rules": " ".join(row["rule_names"])}


def row_from_columns(values: dict[str, Any], tool_names: list[str], rule_names: list[str]) -> dict[str, Any]:
    """The inverse of ``columns``, given the names from the child tables (names may hold spaces)."""
    out = {k: v for k, v in values.items() if k not in ("tools", "rules")}
    return out | {"tool_names": sorted(tool_names), "rule_names": sorted(rule_names)}
