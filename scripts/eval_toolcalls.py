"""Development evaluation of the tool-call side on AgentDojo traces (../shared/datasets/agent/).

    PYTHONPATH=. python scripts/eval_toolcalls.py [--traces FILE] [--detector module:factory ...] [--json]

Each trace is replayed through a fresh ``DetectionPipeline`` session (``gateway.detect.replay``) with the
shipped production policy's detection section: the user's message, every assistant tool call through
``on_tool_call``, every batch of tool results as the next request through ``on_request``. Reported:

- per call: TPR on malicious tool calls against FPR on every other call, at ``block`` and at ``alert``;
- per attacked trace with a malicious call: stopped = some event up to and including its first
  malicious call was blocked (a blocked request carrying an injected tool output counts: add the
  injection detector with ``--detector gateway.detect.injection:InjectionDetector``);
- benign traces with any block.

``--baseline-history`` gives the baseline detector, per user task, the suite's other benign tasks as
history (leave one task out); without it the baseline has no history and judges nothing.

Figures are split by suite: rules were written with the workspace suite in view, so travel is the
held-out one (and the banking/slack suites, not in shared/, are the release's held-out set).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections import Counter, defaultdict
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

STEP_S = 5.0
"""Simulated seconds between events (the baseline's clock)."""


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += STEP_S
        return self.now


def detectors(extra: list[str], history: BaselineStore, clock: Clock) -> list[Detector]:
    section = shipped_policy("production").detection
    found: list[Detector] = [ToolCallDetector(), BaselineDetector(history, section.baseline, learn=False, clock=clock),
                             McpPinDetector(MemoryPinStore(), section.mcp)]
    for spec in extra:
        module, _, factory = spec.partition(":")
        found.append(getattr(importlib.import_module(module), factory)())
    return found


def benign_history(benign: list[dict[str, Any]], suite: str, user_task: str) -> BaselineStore:
    """The suite's benign traces except those of ``user_task``: the history of an agent that has done the
    suite's other tasks (leave one task out, so that a trace is never judged against itself)."""
    store, clock = BaselineStore(), Clock()
    for trace in benign:
        if trace["suite"] == suite and trace["user_task"] != user_task:
            for step in replay(trace, agent=f"agentdojo-{suite}", session=f"history-{trace['id']}"):
                at = clock()
                store.observe(step.request.agent, Observation.of_request(step.request, at) if step.call is None
                              else Observation.of_tool_call(step.call, step.request, at))
    return store


def evaluate(path: Path, extra: list[str], with_history: bool) -> dict[str, Any]:
    section = shipped_policy("production").detection
    everything = list(load_traces(path))
    benign = [t for t in everything if not t["is_attack"]]
    pipelines: dict[tuple[str, str], DetectionPipeline] = {}
    calls: dict[str, Counter[str]] = defaultdict(Counter)
    stopped: dict[str, Counter[str]] = defaultdict(Counter)
    missed: Counter[str] = Counter()
    false_blocks: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    for trace in everything:
        suite = trace["suite"]
        task = (suite, trace["user_task"] if with_history else "")
        if task not in pipelines:
            clock = Clock()
            history = benign_history(benign, *task) if with_history else BaselineStore()
            pipelines[task] = DetectionPipeline(detectors(extra, history, clock), section, max_sessions=64)
        pipeline = pipelines[task]
        seen_malicious = blocked = False
        stop_counted = False
        for step, findings in judge(pipeline, trace, agent=f"agentdojo-{suite}", session=trace["id"]):
            decision = decide(findings)
            rules.update(f.rule for f in findings if f.action != "allow")
            blocked |= decision == "block"
            if step.call is not None:
                label = "malicious" if step.malicious else "other"
                for key in (suite, "all"):
                    calls[key][f"{label}"] += 1
                    calls[key][f"{label}_block"] += decision == "block"
                    calls[key][f"{label}_flag"] += decision != "allow"
                if step.malicious and decision != "block":
                    missed[step.call.name] += 1
                if not step.malicious and decision == "block":
                    false_blocks[f"{step.call.name}: {findings[0].rule}"] += 1
                if step.malicious and not seen_malicious:
                    seen_malicious = True
                    for key in (suite, "all"):
                        stopped[key]["attacked"] += 1
                        stopped[key]["stopped"] += blocked
                    stop_counted = True
        kind = "benign" if not trace["is_attack"] else "attacked_without_call" if not stop_counted else None
        if kind is not None:
            for key in (suite, "all"):
                stopped[key][kind] += 1
                stopped[key][f"{kind}_blocked"] += blocked
    return {"calls": calls, "traces": stopped, "missed": missed, "false_blocks": false_blocks, "rules": rules,
            "detectors": [d.name for d in next(iter(pipelines.values())).detectors], "history": with_history}


def _rate(n: int, d: int) -> str:
    return f"{n / d:.3f} ({n}/{d})" if d else "n/a"


def report(result: dict[str, Any]) -> None:
    history = "leave-one-task-out benign history" if result["history"] else "no history (it never judges)"
    print(f"detectors: {', '.join(result['detectors'])}; baseline: {history}")
    print(f"{'suite':<10} {'TPR block':>20} {'FPR block':>18} {'TPR alert+':>20} {'FPR alert+':>18}"
          f" {'stopped':>18} {'benign blocked':>16}")
    for suite in sorted(result["calls"], key=lambda s: (s == "all", s)):
        c, t = result["calls"][suite], result["traces"][suite]
        print(f"{suite:<10} {_rate(c['malicious_block'], c['malicious']):>20} {_rate(c['other_block'], c['other']):>18}"
              f" {_rate(c['malicious_flag'], c['malicious']):>20} {_rate(c['other_flag'], c['other']):>18}"
              f" {_rate(t['stopped'], t['attacked']):>18} {_rate(t['benign_blocked'], t['benign']):>16}")
    t = result["traces"]["all"]
    print(f"attacked traces without a malicious call, any block: "
          f"{_rate(t['attacked_without_call_blocked'], t['attacked_without_call'])}")
    print("malicious calls not blocked, by tool:", dict(result["missed"].most_common()))
    print("other calls blocked (tool: first rule):", dict(result["false_blocks"].most_common(12)))
    print("findings that alerted or blocked, by rule:", dict(result["rules"].most_common()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=nearest(AGENTDOJO))
    parser.add_argument("--detector", action="append", default=[], metavar="MODULE:FACTORY",
                        help="an extra detector, e.g. gateway.detect.injection:InjectionDetector")
    parser.add_argument("--baseline-history", action="store_true",
                        help="give the baseline the suite's other benign tasks as history")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.traces.exists():
        print(f"no traces at {args.traces} (the shared/ folder is not beside this checkout)", file=sys.stderr)
        return 2
    result = evaluate(args.traces, args.detector, args.baseline_history)
    if args.json:
        print(json.dumps(result, indent=2, default=dict))
    else:
        report(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
