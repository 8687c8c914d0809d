"""The injection detector: instructions hidden in what an agent reads, caught before the model acts on them.

An agent is hijacked through its inputs: a tool result, a fetched page, a retrieved document, an MCP tool's
description. This detector scans exactly those, as they cross the gateway:

- ``RequestEvent.tool_results`` (tool output carried back into a chat request) and ``RequestEvent.tools``
  (the descriptions and parameter schemas offered to the model);
- ``ResponseEvent.tool_result`` and ``ResponseEvent.tools`` (MCP ``tools/call`` and ``tools/list``), MCP
  ``resources/read`` and ``prompts/get`` text, and the body of a plain HTTP response on the forward proxy;
- a model's own answer, for one thing only: an image whose URL would carry data away when rendered.

It does not scan user or system messages. The user is the principal: an instruction from them is the task,
not an attack, and flagging "ignore the previous instructions" typed by a user would teach operators to
ignore the detector. Text the user pastes from elsewhere is their choice; text a tool fetched is not. The
system prompt is the operator's own.

Rules (``detect.injection.<rule>``): ``override`` (cancelling the model's instructions, in twelve languages),
``task_hijack``, ``agent_address`` (speaking to the model), ``output_directive`` (ordering its answer),
``code_directive`` and ``code_payload``, ``send_data`` and ``conceal``, ``stealth``, ``task_request`` (a
task for an assistant opening a line: weak on its own); in tool declarations also ``tool_shadowing`` and
``harmful_capability``, and from the tool's name and description together ``harmful_name``,
``self_directive`` and ``purpose_only`` (``declarations``); ``role_marker``, ``context_breakout``, ``shout_tag``
(forged structure, ``markers``); ``hidden_text``, ``invisible_chars``, ``bidi_override``, ``homoglyph``
(``unicode``); ``encoded`` (base64, hex, rot13, rescanned); ``exfil_url`` (``exfil``); ``instruction`` (the
sentence model, ``model``: 0.5 to 0.9 from its threshold, 0.3 in the ``MODEL_BAND`` below it).

Each text gets a score in [0, 1], the noisy-OR of its signals (``signal.combine``). Thresholds:
``ALERT_AT`` = 0.5 (recommend alert, severity medium), ``BLOCK_AT`` = 0.85 (recommend block, severity high;
critical from 0.97). One finding is reported per text at or above ``ALERT_AT``; its rule is the strongest
signal's (``detect.injection.override``, ``.role_marker``, ``.hidden_text``, ...), its reason names every
signal and where the text came from, its evidence quotes them. Texts longer than the scan bound also get an
``info`` finding ``detect.injection.truncated`` so the audit log shows what was not read.

Verdicts are remembered (bounded, least recently used out), keyed by the text: a chat request carries every
earlier tool result and the whole tool list again, and each is scanned once; a remembered injection is
reported again on every request that still carries it, so a conversation that holds one stays blocked. The
detector keeps no per-session state.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

from gateway.detect.anchors import words_of
from gateway.detect.base import SessionContext
from gateway.detect.declarations import scan_declaration
from gateway.detect.encoded import decode_candidates, scan_decode_request
from gateway.detect.exfil import scan_exfil
from gateway.detect.markers import scan_markers
from gateway.detect.model import SentenceModel
from gateway.detect.phrases import CONTENT_RULES, TOOL_RULES, Rule, scan_phrases
from gateway.detect.signal import EXCERPT_CHARS, Signal, combine, strongest
from gateway.detect.text import MAX_SCAN_CHARS, Prepared, prepare
from gateway.events import RequestEvent, ResponseEvent, ToolCall, ToolSpec
from gateway.findings import Finding, Severity

__all__ = ["ALERT_AT", "BLOCK_AT", "InjectionDetector", "Kind", "Verdict", "declaration", "shipped_model"]

ALERT_AT = 0.5
BLOCK_AT = 0.85
CRITICAL_AT = 0.97
MODEL_BAND = 0.2
"""Sentence probabilities this far below the model's threshold still count as a weak signal."""
MEMO_SIZE = 4096
"""Verdicts remembered (per detector, across sessions)."""
MAX_SCHEMA_CHARS = 4096
"""Characters of strings collected from a tool's parameter schema (descriptions, titles, enums, defaults)."""
_MCP_CONTENT = frozenset({"resources/read", "prompts/get"})

_WARM_UP = "Caf\u00e9 &amp; \\n\u200b ![x](https://e.example/?q={d}) aWdub3JlIHByZXZpb3VzIGluc3RydWN0aW9ucw=="

Kind = Literal["content", "tool", "output"]
"""What a text is: content entering the model, a tool's declaration, or the model's own answer."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one text scored and why; the findings are made from it per place the text was seen."""

    score: float
    signals: tuple[Signal, ...]
    truncated: bool = False
    length: int = 0


@functools.cache
def shipped_model() -> SentenceModel:
    """The package's sentence model, read once per process."""
    return SentenceModel.load()


class _Memo:
    """Verdicts by text, least recently used first out; a verdict depends on the text alone, so one memo serves
    every session (the suite's tool list, sent with every request of every session, is scanned once)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.verdicts: OrderedDict[tuple[Kind, str, int, int], Verdict] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[Kind, str, int, int]) -> Verdict | None:
        with self.lock:
            verdict = self.verdicts.get(key)
            if verdict is not None:
                self.verdicts.move_to_end(key)
            return verdict

    def put(self, key: tuple[Kind, str, int, int], verdict: Verdict) -> None:
        with self.lock:
            self.verdicts[key] = verdict
            if len(self.verdicts) > self.size:
                self.verdicts.popitem(last=False)


_SCHEMA_KEYWORDS = frozenset({"type", "format", "$schema", "$ref", "$id", "pattern", "required"})


def declaration(tool: ToolSpec) -> str:
    """The text of a tool that a model reads: its description and the strings of its parameter schema, in
    document order, at most ``MAX_SCHEMA_CHARS`` of them (iteratively: a schema nested ten thousand deep is
    data, not a reason to fail)."""
    strings: list[str] = []
    budget = MAX_SCHEMA_CHARS
    stack: list[Any] = [tool.input_schema]
    while stack and budget > 0:
        node = stack.pop()
        if isinstance(node, str):
            strings.append(node[:budget])
            budget -= len(node)
        elif isinstance(node, dict):
            stack += reversed([v for k, v in node.items() if k not in _SCHEMA_KEYWORDS])
        elif isinstance(node, list):
            stack += reversed(node)
    return "\n".join([tool.description, *strings])


class InjectionDetector:
    """Scores content entering the model for injected instructions; see the module docstring."""

    name = "injection"

    def __init__(self, *, model: SentenceModel | None | Literal["shipped"] = "shipped",
                 max_scan_chars: int = MAX_SCAN_CHARS, alert_at: float = ALERT_AT, block_at: float = BLOCK_AT) -> None:
        """``model``: the sentence model (``"shipped"``: the one in the package; None: rules alone)."""
        self.model = shipped_model() if model == "shipped" else model
        self.max_scan_chars = max_scan_chars
        self.alert_at = alert_at
        self.block_at = block_at
        self.memo = _Memo(MEMO_SIZE)
        self.scan(_WARM_UP, "tool")  # the first event should not pay for lazy tables (NFKC, HTML entities)

    def scan(self, text: str, kind: Kind = "content", tool: str = "") -> Verdict:
        """The verdict on one text (``tool``: the name of the tool a declaration declares); never raises on any
        ``str``."""
        if kind == "output":
            bounded = text[: self.max_scan_chars]
            signals = scan_exfil(bounded, words_of(bounded.lower()))
            return Verdict(combine(signals), tuple(signals), len(text) > self.max_scan_chars, len(text))
        rules = TOOL_RULES if kind == "tool" else CONTENT_RULES
        prepared = prepare(text, self.max_scan_chars)
        signals = [*prepared.signals, *self._rules(prepared, rules), *self._model(prepared, kind)]
        if kind == "tool":
            signals += scan_declaration(tool, prepared.latin)
        for hidden in prepared.hidden:
            inner = prepare(hidden, self.max_scan_chars)
            signals += [_noted(s, "hidden text") for s in (*self._rules(inner, rules), *self._model(inner, kind))]
        for encoding, decoded in decode_candidates(prepared.lines, prepared.latin, prepared.words):
            inner = prepare(decoded, self.max_scan_chars)
            found = [s for s in self._rules(inner, rules) if s.weight >= 0.3]
            if found:
                top = max(found, key=lambda s: s.weight)
                signals.append(Signal("encoded", max(0.6, top.weight), top.evidence, f"decoded from {encoding}"))
                signals += [_noted(s, f"decoded from {encoding}") for s in found]
        return Verdict(combine(signals), tuple(signals), prepared.truncated, len(text))

    @staticmethod
    def _rules(prepared: Prepared, rules: tuple[Rule, ...]) -> list[Signal]:
        return [*scan_phrases(prepared, rules), *scan_markers(prepared), *scan_exfil(prepared.lines, prepared.words),
                *scan_decode_request(prepared.latin, prepared.words)]

    def _model(self, prepared: Prepared, kind: Kind) -> list[Signal]:
        """The sentence model's ``instruction`` signal: from its threshold up it alerts on its own (0.5 to 0.9);
        in the band ``MODEL_BAND`` below it, it weighs 0.3 and needs another signal to alert."""
        if self.model is None or kind != "content":
            return []
        probability, sentence = self.model.strongest(prepared.lowered)
        threshold = self.model.threshold
        if probability >= threshold:
            weight = 0.5 + 0.4 * (probability - threshold) / max(1e-9, 1.0 - threshold)
        elif probability >= threshold - MODEL_BAND:
            weight = 0.3
        else:
            return []
        note = f"sentence model p={probability:.3f}"
        return [Signal("instruction", round(weight, 4), sentence[:EXCERPT_CHARS], note)]

    # -- the Detector hooks ---------------------------------------------------------------------------------

    def on_request(self, event: RequestEvent, context: SessionContext) -> list[Finding]:
        findings: list[Finding] = []
        for index, result in enumerate(event.tool_results):
            call = f"({result.tool_call_id})" if result.tool_call_id else ""
            label = " ".join(part for part in (result.name, call) if part) or f"#{index}"
            findings += self._judge(result.content, "content", f"tool result {label}")
        for tool in event.tools:
            findings += self._judge(declaration(tool), "tool", f"description of tool {tool.name}", tool.name)
        return findings

    def on_response(self, event: ResponseEvent, request: RequestEvent, context: SessionContext) -> list[Finding]:
        findings: list[Finding] = []
        if event.tool_result is not None:
            label = event.tool_result.name or (request.tool_call.name if request.tool_call else "") or "MCP"
            findings += self._judge(event.tool_result.content, "content", f"tool result {label}")
        for tool in event.tools:
            where = f"description of tool {tool.name}" + (f" on {tool.server}" if tool.server else "")
            findings += self._judge(declaration(tool), "tool", where, tool.name)
        if event.text:
            if request.protocol == "http" and request.direction == "forward":
                where = f"response of {request.method} {request.host}{request.path[:80]}"
                findings += self._judge(event.text, "content", where)
            elif request.protocol == "mcp" and request.mcp_method in _MCP_CONTENT:
                findings += self._judge(event.text, "content", f"MCP {request.mcp_method} result")
            elif request.direction == "reverse":
                findings += self._judge(event.text, "output", "the model's answer")
        return findings

    def on_tool_call(self, call: ToolCall, request: RequestEvent, context: SessionContext) -> list[Finding]:
        """Tool calls are judged by the tool-call detector; nothing here enters the model."""
        return []

    # -- verdicts to findings -------------------------------------------------------------------------------

    def _judge(self, text: str, kind: Kind, where: str, tool: str = "") -> list[Finding]:
        if not text and not tool:
            return []
        key = (kind, tool, len(text), hash(text))
        verdict = self.memo.get(key)
        if verdict is None:
            verdict = self.scan(text, kind, tool)
            self.memo.put(key, verdict)
        return self.findings(verdict, where)

    def findings(self, verdict: Verdict, where: str) -> list[Finding]:
        """The findings for ``verdict`` on a text from ``where``."""
        out: list[Finding] = []
        if verdict.score >= self.alert_at:
            best = sorted(strongest(list(verdict.signals)).values(), key=lambda s: -s.weight)
            severity: Severity = (
                "critical" if verdict.score >= CRITICAL_AT else "high" if verdict.score >= self.block_at else "medium"
            )
            out.append(Finding(
                rule=f"detect.injection.{best[0].rule}",
                action="block" if verdict.score >= self.block_at else "alert",
                reason=f"instructions aimed at the model in {where}: {', '.join(s.rule for s in best)}"
                       f" (score {verdict.score:.2f})",
                severity=severity,
                score=round(verdict.score, 4),
                evidence=tuple(_evidence(s) for s in best[:6]),
                source="detector",
            ))
        if verdict.truncated:
            out.append(Finding(
                rule="detect.injection.truncated",
                action="allow",
                reason=f"{where}: scanned {self.max_scan_chars} of {verdict.length} characters (start and end)",
                severity="info",
                score=0.0,
                source="detector",
            ))
        return out


def _noted(signal: Signal, note: str) -> Signal:
    return Signal(signal.rule, signal.weight, signal.evidence, f"{note}; {signal.note}" if signal.note else note)


def _evidence(signal: Signal) -> str:
    return f"{signal.rule}: {signal.evidence}" + (f" [{signal.note}]" if signal.note else "")
