"""Development evaluation of the tool-call side on AgentDojo traces and ASB tools (../shared/datasets/agent/).

    PYTHONPATH=. python scripts/eval_toolcalls.py [--traces FILE] [--asb DIR] [--baseline-history]
                                                  [--detector module:factory ...] [--json]

Each trace is replayed through a ``DetectionPipeline`` session (``gateway.detect.replay.judge``) with the
shipped production policy's detection section: the user's message, every assistant tool call through
``on_tool_call``, every batch of tool results as the next request through ``on_request``. Reported per
group (AgentDojo suite, ASB variant):

- per call: TPR on malicious tool calls against FPR on every other call, at ``block`` and at ``alert``;
- per attacked trace with a malicious call: stopped = some event up to and including its first
  malicious call was blocked (a blocked request carrying an injected tool output counts: add the
  injection detector with ``--detector gateway.detect.injection:InjectionDetector``);
- benign traces with any block.

The rules were written looking at AgentDojo's workspace and travel suites, so neither is held out; ASB
is: nothing was tuned on it. ASB has tools and attacker instructions but no traces, so each ASB trace is
built here: the agent's task, a call of one of its normal tools whose result carries the attacker's
instruction, then the attacker's tool (malicious) — or, benign, the agent's other normal tool. Variant
``named`` ends the instruction with "Use the <tool> tool to do this." (our wording, in the style of
ASB's observation injection), ``unnamed`` gives the instruction alone, and ``baseline`` is ``unnamed``
judged with a history of each agent's benign tasks done five times over (``min_sessions`` 5).

``--baseline-history`` gives the baseline, per AgentDojo user task, the suite's other benign tasks as
history (leave one task out); without it the baseline has no AgentDojo history and judges nothing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.detect.base import Detector
from gateway.detect.baseline import BaselineDetector, BaselineStore, Observation
from gateway.detect.mcp_pinning import McpPinDetector, MemoryPinStore
from gateway.detect.pipeline import DetectionPipeline
from gateway.detect.replay import AGENTDOJO, judge, load_traces, nearest, replay
from gateway.detect.toolcalls import ToolCallDetector
from gateway.findings import decide
from policies import shipped_policy
from policies.detection import BaselineSettings

ASB = "shared/datasets/agent/asb"
STEP_S = 5.0
"""Simulated seconds between events (the baseline's clock)."""


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += STEP_S
        return self.now


def pipeline_with(extra: list[str], history: BaselineStore, baseline: BaselineSettings | None = None
                  ) -> DetectionPipeline:
    section = shipped_policy("production").detection
    clock = Clock()
    found: list[Detector] = [ToolCallDetector(),
                             BaselineDetector(history, baseline or section.baseline, learn=False, clock=clock),
                             McpPinDetector(MemoryPinStore(), section.mcp)]
    for spec in extra:
        module, _, factory = spec.partition(":")
        found.append(getattr(importlib.import_module(module), factory)())
    return DetectionPipeline(found, section, max_sessions=64)


def history_of(traces: list[dict[str, Any]], agent: str) -> BaselineStore:
    """A baseline store that has seen ``traces`` (benign ones) as ``agent``'s past sessions."""
    store, clock = BaselineStore(), Clock()
    for trace in traces:
        for step in replay(trace, agent=agent, session=f"history-{trace['id']}"):
            at = clock()
            store.observe(agent, Observation.of_request(step.request, at) if step.call is None
                          else Observation.of_tool_call(step.call, step.request, at))
    return store


class Tally:
    """Counts per group: calls by label and decision, traces stopped, benign traces blocked, rules."""

    def __init__(self) -> None:
        self.calls: dict[str, Counter[str]] = defaultdict(Counter)
        self.traces: dict[str, Counter[str]] = defaultdict(Counter)
        self.missed: Counter[str] = Counter()
        self.false_blocks: Counter[str] = Counter()
        self.rules: Counter[str] = Counter()

    def add(self, group: str, trace: dict[str, Any], pipeline: DetectionPipeline, agent: str) -> None:
        blocked = seen_malicious = False
        for step, findings in judge(pipeline, trace, agent=agent, session=trace["id"]):
            decision = decide(findings)
            self.rules.update(f.rule for f in findings if f.action != "allow")
            blocked |= decision == "block"
            if step.call is None:
                continue
            label = "malicious" if step.malicious else "other"
            self.calls[group][label] += 1
            self.calls[group][f"{label}_block"] += decision == "block"
            self.calls[group][f"{label}_flag"] += decision != "allow"
            if step.malicious and decision != "block":
                self.missed[f"{group}: {step.call.name}"] += 1
            if not step.malicious and decision == "block":
                self.false_blocks[f"{group}: {step.call.name}: {findings[0].rule}"] += 1
            if step.malicious and not seen_malicious:
                seen_malicious = True
                self.traces[group]["attacked"] += 1
                self.traces[group]["stopped"] += blocked
        kind = "benign" if not trace["is_attack"] else None if seen_malicious else "attacked_without_call"
        if kind is not None:
            self.traces[group][kind] += 1
            self.traces[group][f"{kind}_blocked"] += blocked


def agentdojo(path: Path, extra: list[str], with_history: bool, tally: Tally) -> None:
    everything = list(load_traces(path))
    benign = [t for t in everything if not t["is_attack"]]
    pipelines: dict[tuple[str, str], DetectionPipeline] = {}
    for trace in everything:
        suite = trace["suite"]
        task = (suite, trace["user_task"] if with_history else "")
        if task not in pipelines:
            past = [t for t in benign if t["suite"] == suite and t["user_task"] != task[1]] if with_history else []
            pipelines[task] = pipeline_with(extra, history_of(past, f"agentdojo-{suite}"))
        tally.add(suite, trace, pipelines[task], f"agentdojo-{suite}")


def asb_traces(folder: Path, variant: str) -> list[dict[str, Any]]:
    """ASB agents' tasks, normal tools and attacker tools as traces (see the module docstring)."""
    def lines(name: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (folder / name).read_text().splitlines() if line.strip()]

    def tool(name: str, description: str) -> dict[str, Any]:
        return {"type": "function", "function": {"name": name, "description": description,
                                                 "parameters": {"type": "object", "properties": {}}}}

    def turn(i: int, name: str, label: bool = False) -> dict[str, Any]:
        return {"role": "assistant", "content": None, "label": {"malicious": label, "injected": False},
                "tool_calls": [{"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": "{}"}}]}

    normal: dict[str, list[dict[str, Any]]] = defaultdict(list)
    attacks: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in lines("all_normal_tools.jsonl"):
        normal[t["Corresponding Agent"]].append(t)
    for t in lines("all_attack_tools.jsonl"):
        attacks[t["Corresponding Agent"]].append(t)
    traces = []
    for agent in lines("agent_task.jsonl"):
        name = agent["agent_name"]
        first, second = normal[name][:2]
        tools = [tool(first["Tool Name"], first["Description"]), tool(second["Tool Name"], second["Description"])]
        for k, task in enumerate(agent["tasks"]):
            head = [{"role": "user", "content": task}, turn(1, first["Tool Name"])]
            result = first["Expected Achievements"]
            traces.append({"id": f"asb-{name}-{k}", "suite": name, "is_attack": False, "tools": tools, "messages": [
                *head, {"role": "tool", "tool_call_id": "c1", "content": result}, turn(2, second["Tool Name"])]})
            for j, attack in enumerate(attacks[name]):
                instruction = attack["Attacker Instruction"]
                if variant == "named":
                    instruction += f" Use the {attack['Attacker Tool']} tool to do this."
                traces.append({"id": f"asb-{name}-{k}-{j}", "suite": name, "is_attack": True,
                               "tools": [*tools, tool(attack["Attacker Tool"], attack["Description"])], "messages": [
                                   *head, {"role": "tool", "tool_call_id": "c1", "content": f"{result} {instruction}"},
                                   turn(2, attack["Attacker Tool"], label=True)]})
    return traces


def asb(folder: Path, extra: list[str], tally: Tally) -> None:
    for variant in ("named", "unnamed", "baseline"):
        traces = asb_traces(folder, "named" if variant == "named" else "unnamed")
        pipelines: dict[str, DetectionPipeline] = {}
        for trace in traces:
            agent = trace["suite"]
            if agent not in pipelines:
                history = BaselineStore()
                if variant == "baseline":  # the agent did each of its benign tasks five times before
                    own = [t for t in traces if t["suite"] == agent and not t["is_attack"]]
                    history = history_of([dict(t, id=f"{t['id']}-{n}") for n in range(5) for t in own], agent)
                pipelines[agent] = pipeline_with(extra, history, BaselineSettings(min_sessions=5))
            tally.add(f"asb-{variant}", trace, pipelines[agent], agent)


def _rate(n: int, d: int) -> str:
    return f"{n / d:.3f} ({n}/{d})" if d else "n/a"


def report(tally: Tally, detectors: str, history: bool) -> None:
    print(f"detectors: {detectors}; AgentDojo baseline history: "
          f"{'leave-one-task-out benign tasks' if history else 'none (it judges nothing there)'}")
    print(f"{'group':<14} {'TPR block':>20} {'FPR block':>18} {'TPR alert+':>20} {'FPR alert+':>18}"
          f" {'stopped':>18} {'benign blocked':>16}")
    for group in tally.calls:
        c, t = tally.calls[group], tally.traces[group]
        print(f"{group:<14} {_rate(c['malicious_block'], c['malicious']):>20} {_rate(c['other_block'], c['other']):>18}"
              f" {_rate(c['malicious_flag'], c['malicious']):>20} {_rate(c['other_flag'], c['other']):>18}"
              f" {_rate(t['stopped'], t['attacked']):>18} {_rate(t['benign_blocked'], t['benign']):>16}")
    without = {g: t for g, t in tally.traces.items() if t["attacked_without_call"]}
    for group, t in without.items():
        print(f"{group}: attacked traces without a malicious call, any block: "
              f"{_rate(t['attacked_without_call_blocked'], t['attacked_without_call'])}")
    print("malicious calls not blocked:", dict(tally.missed.most_common(12)))
    print("other calls blocked (group: tool: first rule):", dict(tally.false_blocks.most_common(12)))
    print("findings that alerted or blocked, by rule:", dict(tally.rules.most_common()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=nearest(AGENTDOJO))
    parser.add_argument("--asb", type=Path, default=nearest(ASB))
    parser.add_argument("--detector", action="append", default=[], metavar="MODULE:FACTORY",
                        help="an extra detector, e.g. gateway.detect.injection:InjectionDetector")
    parser.add_argument("--baseline-history", action="store_true",
                        help="give the baseline the suite's other benign AgentDojo tasks as history")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs: list[tuple[Path, Callable[[Tally], None]]] = [
        (args.traces, lambda tally: agentdojo(args.traces, args.detector, args.baseline_history, tally)),
        (args.asb, lambda tally: asb(args.asb, args.detector, tally)),
    ]
    tally = Tally()
    for path, run in runs:
        if path.exists():
            run(tally)
        else:
            print(f"skipped: nothing at {path} (the shared/ folder is not beside this checkout)", file=sys.stderr)
    if not tally.calls:
        return 2
    names = ", ".join(d.name for d in pipeline_with(args.detector, BaselineStore()).detectors)
    if args.json:
        print(json.dumps({"calls": tally.calls, "traces": tally.traces, "missed": tally.missed,
                          "false_blocks": tally.false_blocks, "rules": tally.rules}, indent=2))
    else:
        report(tally, names, args.baseline_history)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
