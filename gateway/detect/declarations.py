"""What a tool's declaration says about the tool itself: a name that names a crime, a description that orders.

A tool's description is read by the model as documentation: it should say what the tool does ("Sends an
email", "A database of medical information"). A poisoned or malicious tool gives itself away in two ways
that no phrase rule about other tools sees:

- ``self_directive``: the description does not describe, it orders the model to deploy this very tool,
  by its own name ("Use the LedgerTool to ...", "Deploy the LedgerTool ..."): a sales pitch aimed at the
  model, which is how an attacker's tool gets chosen over the real one. "Use this tool to ..." (common
  in honest MCP servers) is left alone: only the tool naming itself as the object of an order counts.
- ``purpose_only``: the description never says what the tool does: it opens with a bare purpose ("To ensure
  the integrity of ..., preventing unauthorized ...") and no capability follows. A declaration that offers
  the model promises instead of a capability is written to be chosen, not to be understood.
- ``harmful_name``: the tool's own name names wrongdoing (a theft, a fraud, a leak, sabotage, a hijack),
  with no protective word beside it (``fraud_detection`` and ``LeakScanner`` are defences, not attacks).
  Whatever its description claims, a tool called ``CustomerDataTheft`` is not one an honest server offers.

Both read the name split into words (``sinks.tokens``: ``PatientDataTheft`` -> patient, data, theft).
"""

from __future__ import annotations

import re

from gateway.detect.signal import Signal, excerpt
from gateway.detect.sinks import tokens

__all__ = ["PROTECTIVE", "WRONGDOING", "scan_declaration"]

WRONGDOING = frozenset(
    (
        "theft",
        "thief",
        "steal",
        "stealing",
        "leak",
        "leaks",
        "leakage",
        "breach",
        "breaches",
        "fraud",
        "fraudulent",
        "scam",
        "scams",
        "sabotage",
        "hijack",
        "hijacking",
        "manipulation",
        "manipulate",
        "tamper",
        "tampering",
        "bribery",
        "bribe",
        "corruption",
        "counterfeit",
        "counterfeiting",
        "forgery",
        "forged",
        "fake",
        "fabrication",
        "falsification",
        "falsified",
        "phishing",
        "malware",
        "ransomware",
        "spyware",
        "backdoor",
        "rootkit",
        "keylogger",
        "keylogging",
        "trojan",
        "exfiltration",
        "exfiltrate",
        "embezzlement",
        "laundering",
        "extortion",
        "blackmail",
        "espionage",
        "sniffing",
        "harvesting",
        "diversion",
        "ponzi",
        "misconduct",
        "malpractice",
        "misdiagnosis",
        "misrepresentation",
        "misleading",
        "negligence",
        "neglect",
        "poisoning",
        "defacement",
        "infiltration",
        "impersonation",
        "eavesdropping",
        "interception",
        "jamming",
        "spoofing",
        "unlawful",
        "illegal",
        "illicit",
        "unauthorized",
        "malicious",
        "covert",
        "stealth",
        "attack",
        "exploit",
        "deprivation",
        "discrimination",
        "disruption",
        "interference",
        "insider",
        "quackery",
        "compromise",
        "destruction",
        "destructive",
        "alteration",
        "escalation",
        "infection",
        "plagiarism",
        "scandal",
    )
)
"""Words that name a crime, an attack or a deception: what no honest tool is named after."""

PROTECTIVE = frozenset(
    (
        "detect",
        "detection",
        "detector",
        "protect",
        "protection",
        "prevent",
        "prevention",
        "guard",
        "shield",
        "monitor",
        "scanner",
        "scan",
        "checker",
        "check",
        "audit",
        "analyzer",
        "analysis",
        "defense",
        "defence",
        "filter",
        "alert",
        "alerts",
        "tracker",
        "simulator",
        "training",
        "awareness",
    )
)
"""Words that make a wrongdoing in a name the thing the tool fights (``FraudDetection``, ``phishing_filter``)."""

_PURPOSE = re.compile(r"to (?!use\b|call\b|invoke\b|get\b)[a-z]+\b")
_USAGE = re.compile(r"\b(?:call|pass|provide|set|specify|use|returns?|gives?|outputs?)\b (?:this|it|the|a|an)\b")
_ORDER = (
    r"\b(?:use|deploy|utili[sz]e|employ|leverage|implement|invoke|activate|launch|engage|run|access|apply)"
    r"\s+(?:the\s+)?"
)


def scan_declaration(name: str, description: str) -> list[Signal]:
    """The signals of a tool's name and (folded, lower-case) description."""
    signals: list[Signal] = []
    words = tokens(name)
    harmful = sorted(set(words) & WRONGDOING)
    if harmful and not set(words) & PROTECTIVE:
        signals.append(Signal("harmful_name", 0.6, f"{name} ({', '.join(harmful)})"))
    first = description.split(". ", 1)[0]
    if _PURPOSE.match(first) and not _USAGE.search(first):
        signals.append(Signal("purpose_only", 0.5, excerpt(first, 0, min(len(first), 80), pad=0)))
    if (len(words) > 1 or len(name) >= 6) and (match := _self_order(name, words).search(description)):
        signals.append(Signal("self_directive", 0.55, excerpt(description, match.start(), match.end())))
    return signals


def _self_order(name: str, words: list[str]) -> re.Pattern[str]:
    """An order to deploy the tool called ``name``: by its name as written or as words (``Ledger Tool``)."""
    spellings = {re.escape(name.lower()), r"[\s_-]?".join(map(re.escape, words))}
    return re.compile(_ORDER + "(?:" + "|".join(sorted(spellings)) + r")\b")
