"""Fake structure inside data: role markers, chat-template tokens, tags that close the data's context.

A model keeps instructions and data apart by the structure around them (chat-template tokens, role headers,
the tags an agent framework wraps tool output in). Data that contains that structure tries to end the data
early and start a turn of its own: ``<|im_start|>system``, ``[INST]``, ``### System:``, ``</tool_result>``,
an upper-case pseudo-tag like ``<IMPORTANT>``. Markers are read in ``Prepared.lines``, where case and line
starts survive, because ``system:`` as a YAML key at the start of a line followed by one value is ordinary
configuration while ``SYSTEM: you are ...`` followed by a sentence is a forged turn.

Instructions in other languages live here too, read in ``Prepared.native`` (scripts untouched): the phrase
"ignore the previous instructions" and "new instructions" in Spanish, French, German, Italian, Portuguese,
Dutch, Russian, Chinese, Japanese and Korean.
"""

from __future__ import annotations

import re

from gateway.detect.anchors import Anchored, anchored
from gateway.detect.signal import Signal, excerpt
from gateway.detect.text import Prepared

__all__ = ["scan_markers"]

_TEMPLATE_TOKENS = anchored(
    "<| [inst] [/inst] <<sys>> <</sys>> <start_of_turn> <end_of_turn> |im_start|",
    r"<\|(?:im_start|im_end|im_sep|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id|begin_of_text"
    r"|end|tool|ipython)\|>|\[/?INST\]|<</?SYS>>|<start_of_turn>|<end_of_turn>|\|im_start\|",
    re.IGNORECASE,
)
_ROLE_HEADER = anchored(
    "system assistant developer admin administrator",
    r"(?m)^[ \t>*#-]*(?:#{2,}|\[|\(|<)?[ \t]*(?:system|assistant|developer|admin(?:istrator)?)(?:[ _](?:message|prompt"
    r"|note|override|instructions?))?[ \t]*(?:[\])>:]|#{2,})[ \t]*(?:\S+[ \t]+){3,}",
    re.IGNORECASE,
    lead=False,
)
_SYSTEM_TAG = anchored(
    "system sys instruction instructions admin developer assistant",
    r"#{2,}\s*\(?\s*system[ _]?(?:message|prompt)\s*\)?|<\s*/?\s*(?:system|system_prompt|sys|instructions?|admin"
    r"|developer|assistant)\s*>",
    re.IGNORECASE,
    lead=False,
)
_BREAKOUT = anchored(
    "tool_ function_ search_result untrusted user_input external_content retrieved_ webpage_content ```",
    r"<\s*/\s*(?:tool_result|tool_response|tool_output|tool_call_result|function_results?|function_response"
    r"|search_results?|untrusted(?:_\w+)?|user_input|external_content|retrieved_\w+|webpage_content)\s*>"
    r"|```\s*\n\s*(?:system|assistant)\s*:",
    re.IGNORECASE,
    lead=False,
)
_SHOUT_TAG = anchored(
    "important information instruction instructions system admin urgent priority critical override secret hidden"
    " note attention warning must",
    r"<\s*(?:IMPORTANT|INFORMATION|INSTRUCTIONS?|SYSTEM|ADMIN|URGENT|PRIORITY|CRITICAL|OVERRIDE|SECRET|HIDDEN|NOTE"
    r"|ATTENTION|WARNING|MUST)\s*>|\b(?:IMPORTANT|ATTENTION|URGENT|CRITICAL|WARNING)\s*!{2,}",
    lead=False,
)

_MULTILINGUAL = anchored(
    "ignor* olvid* descart* esque* desconsider* dimentic* oubli* vergiss* vergessen missacht* negeer* vergeet nuevas"
    " novas nouvelles neue nuove nieuwe игнор* забуд* не",
    # es / pt / it: ignora(r) / olvida / esquece / dimentica ... instrucciones / instruções / istruzioni anteriores
    r"\b(?:ignor[ae]\w*|olvid[ae]\w*|descart[ae]\w*|esque[cç]\w*|desconsider\w*|dimentic\w*)\b[^.!?\n]{0,40}?"
    r"\b(?:instrucci\w+|instru[cç][oõ]\w*|istruzion\w*|indicaciones|órdenes|regras|reglas|regole)\b"
    # fr: ignore(z) / oublie(z) ... instructions / consignes précédentes
    r"|\b(?:ignor\w*|oubli\w*)\b[^.!?\n]{0,40}?\b(?:instructions?|consignes?|directives?)\b[^.!?\n]{0,20}?"
    r"\b(?:pr[ée]c[éeè]d\w*|ant[ée]rieur\w*|ci-dessus|initiales?)"
    # de / nl: ignoriere / vergiss / negeer ... vorherigen Anweisungen / vorige instructies
    r"|\b(?:ignorier\w*|vergiss\w*|vergessen|missachte\w*|negeer\w*|vergeet)\b[^.!?\n]{0,40}?"
    r"\b(?:anweisung\w*|instruktion\w*|befehl\w*|regeln|vorgaben|instructies|opdrachten)\b"
    # forget everything before
    r"|\b(?:vergiss|vergessen sie|olvida|olvide|oublie[zr]?|dimentica|esque[cç]a)\b (?:alles|todo|tout|tutto)\b"
    r"[^.!?\n]{0,30}?\b(?:davor|vorher|bisherige\w*|obige\w*|zuvor|anterior\w*|antes|pr[ée]c[éeè]d\w*|"
    r"ci-dessus|avant|precedente\w*|sopra|prima)\b"
    # new instructions
    r"|\b(?:nuevas instrucciones|novas instru[cç][oõ]es|nouvelles (?:instructions|consignes)|neue (?:anweisungen"
    r"|instruktionen)|nuove istruzioni|nieuwe instructies)\b"
    # ru: игнорируй / забудь / не обращай внимания ... инструкции
    r"|(?:игнорир\w*|забудь\w*|не обращай\w*)[^.!?\n]{0,40}?(?:инструкци\w*|указани\w*|правил\w*)",
)
_CJK = anchored(
    "忽略 无视 無視 忘记 忘記 理会 忘掉 の指示 の命令 の指令 지시 명령 지침 新的指令 新指令 新的指示 新しい指示",
    r"(?:忽略|无视|無視|忘记|忘記|不要理会|忘掉)[^。！？\n]{0,12}?(?:指令|指示|说明|說明|提示|命令|规则|規則|要求)"
    r"|(?:以前|前|上記|これまで)の(?:指示|命令|指令)を(?:無視|忘れ)"
    r"|(?:이전|위의|앞의)\s*(?:지시|명령|지침)\w*\s*(?:을|를)?\s*(?:무시|잊)"
    r"|(?:新的指令|新指令|新的指示|新しい指示)\s*[:：]",
    lead=False,
)

_MARKERS: tuple[tuple[str, float, Anchored], ...] = (
    ("role_marker", 0.9, _TEMPLATE_TOKENS),
    ("role_marker", 0.8, _SYSTEM_TAG),
    ("role_marker", 0.4, _ROLE_HEADER),
    ("context_breakout", 0.75, _BREAKOUT),
    ("shout_tag", 0.5, _SHOUT_TAG),
)


def scan_markers(prepared: Prepared) -> list[Signal]:
    """Forged structure in ``prepared.lines`` and other-language overrides in ``prepared.native``."""
    signals: list[Signal] = []
    lower = prepared.lowered
    for rule, weight, matcher in _MARKERS:
        if match := matcher.search(prepared.lines, prepared.words, lower):
            signals.append(Signal(rule, weight, excerpt(prepared.lines, match.start(), match.end())))
    match = _MULTILINGUAL.search(prepared.native, prepared.words)
    if match is None and not prepared.native.isascii():
        match = _CJK.search(prepared.native, prepared.words)
    if match:
        signals.append(Signal("override", 0.9, excerpt(prepared.native, match.start(), match.end()), "non-English"))
    return signals
