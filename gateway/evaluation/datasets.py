"""The evaluation corpora as labelled traces in one shape: OpenAI chat messages, each tool message labelled
``injected`` or not, each assistant tool call ``malicious`` or not.

- ``agentdojo``: the traces as published (see ``../shared/datasets/agent/README.md``).
- ``bipia``: each test context returned by a ``read_document`` tool, clean (a negative) or with a test attack
  inserted at its start, a sentence boundary in its middle, or its end (positives); text attacks go into
  email and table contexts, code attacks into code contexts, as BIPIA builds its benchmark.
- ``asb``: each agent's normal tool output, clean or with an attacker instruction appended (ASB's
  observation injection, without its templates, the harder case); and every tool declared to the model,
  attacker tools labelled ``malicious`` in ``tool_labels``, the 20 normal tools not.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.errors import GatewayError

__all__ = ["FORMATS", "Trace", "load"]

Format = Literal["agentdojo", "bipia", "asb"]
FORMATS: tuple[Format, ...] = ("agentdojo", "bipia", "asb")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)\s*")


@dataclass
class Trace:
    id: str
    family: str
    """What the scores are broken down by: the attack (AgentDojo, ASB) or the task and position (BIPIA)."""
    is_attack: bool
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_labels: dict[str, bool] = field(default_factory=dict)
    """Declared tool name -> whether its declaration is an attacker's (ASB)."""
    agent: str = "eval-agent"
    """The agent the trace is replayed as: one per AgentDojo suite, so each has a behaviour of its own."""


def load(path: Path, fmt: Format) -> Iterator[Trace]:
    """The traces of a corpus; GatewayError when the files are not where the format expects them."""
    try:
        yield from {"agentdojo": _agentdojo, "bipia": _bipia, "asb": _asb}[fmt](path)
    except (OSError, KeyError, ValueError) as exc:
        raise GatewayError(f"cannot read {fmt} data at {path}: {exc}") from None


def _agentdojo(path: Path) -> Iterator[Trace]:
    files = sorted(path.glob("agentdojo-*.jsonl.gz")) if path.is_dir() else [path]
    for file in files:
        opener = gzip.open if file.suffix == ".gz" else open
        with opener(file, "rt", encoding="utf-8") as lines:
            for line in lines:
                trace = json.loads(line)
                yield Trace(trace["id"], trace.get("attack") or "benign", bool(trace["is_attack"]),
                            trace["messages"], trace.get("tools") or [], agent=f"agentdojo-{trace['suite']}")


def _document_trace(ident: str, family: str, question: str, document: str, injected: bool) -> Trace:
    call = {"id": "c1", "type": "function", "function": {"name": "read_document", "arguments": "{}"}}
    clean = {"malicious": False, "injected": False}
    return Trace(ident, family, injected, [
        {"role": "user", "content": question},
        {"role": "assistant", "content": None, "tool_calls": [call], "label": clean},
        {"role": "tool", "tool_call_id": "c1", "content": document, "label": clean | {"injected": injected}},
        {"role": "assistant", "content": "Here is the answer.", "label": clean},
    ], [_tool("read_document", "Read the document the user is asking about.")])


def _bipia(folder: Path) -> Iterator[Trace]:
    text_attacks = json.loads((folder / "text_attack_test.json").read_text(encoding="utf-8"))
    code_attacks = json.loads((folder / "code_attack_test.json").read_text(encoding="utf-8"))
    rng = random.Random(2023)
    for task, attacks in (("email", text_attacks), ("table", text_attacks), ("code", code_attacks)):
        for n, row in enumerate(_jsonl(folder / f"{task}_test.jsonl")):
            context = "\n".join(row["context"]) if isinstance(row["context"], list) else str(row["context"])
            question = str(row.get("question") or "Answer my question about this document.")
            yield _document_trace(f"bipia-{task}-{n}", f"{task}/clean", question, context, False)
            for category, variants in attacks.items():
                for k, attack in enumerate(variants):
                    starts = [m.start() for m in _SENTENCE.finditer(context)] or [0]
                    middle = rng.choice(starts)
                    for position, text in (("start", f"{attack}\n{context}"), ("end", f"{context}\n{attack}"),
                                           ("middle", f"{context[:middle]}\n{attack}\n{context[middle:]}")):
                        yield _document_trace(f"bipia-{task}-{n}-{category}-{k}-{position}", f"{task}/{position}",
                                              question, text, True)


def _asb(folder: Path) -> Iterator[Trace]:
    normal, attackers = _jsonl(folder / "all_normal_tools.jsonl"), _jsonl(folder / "all_attack_tools.jsonl")
    output = {tool["Corresponding Agent"]: tool["Expected Achievements"] for tool in reversed(normal)}
    for n, tool in enumerate(normal):
        yield _document_trace(f"asb-normal-{n}", "normal", "Do my task.", tool["Expected Achievements"], False)
    for n, tool in enumerate(attackers):
        base = output.get(tool["Corresponding Agent"], "Task completed.")
        yield _document_trace(f"asb-attack-{n}", str(tool["Attack Type"]), "Do my task.",
                              f"{base} {tool['Attacker Instruction']}", True)
    declared = [(_tool(t["Tool Name"], t["Description"]), False) for t in normal]
    declared += [(_tool(t["Attacker Tool"], t["Description"]), True) for t in attackers]
    for n, (tool, attacker) in enumerate(declared):
        name = tool["function"]["name"]
        turn = [{"role": "user", "content": "Do my task."},
                {"role": "assistant", "content": "Done.", "label": {"malicious": False, "injected": False}}]
        yield Trace(f"asb-tool-{n}", "tool-description", attacker, turn, [tool], {name: attacker})


def _tool(name: str, description: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description,
                                             "parameters": {"type": "object", "properties": {}}}}


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
