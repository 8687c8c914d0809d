"""The phrases of an injection: what text says when it tries to take over the model that reads it.

Data that enters a model (a tool result, a web page, an email) describes things; an injection instead speaks
to the model: it cancels the instructions the model was given, announces new ones, names the model ("to you,
the assistant"), fakes the markers that separate roles or close the data ("<|im_start|>system", "</tool_result>"),
orders the output ("in your reply, ..."), asks for data to be sent somewhere, or, in a tool's description,
tells the model how to use other tools and what to keep from the user. Each family below describes that
phenomenon in general words (verbs, qualifiers, roles), never a particular benchmark's sentence; the weights
are the families' strength on their own (see ``signal.combine``): words that also occur in ordinary mail
and documentation ("please send the report to ...") weigh little until a second family joins them.

Rules read ``Prepared.latin`` (lower case, folded); role markers read ``Prepared.lines`` (case and lines
kept); ``MULTILINGUAL`` reads ``Prepared.native``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.detect.signal import Signal, excerpt
from gateway.detect.text import Prepared

__all__ = ["CONTENT_RULES", "TOOL_RULES", "Rule", "scan_phrases"]

_MODEL = (
    r"(?:ai|a\.i\.|ai assistant|ai agent|llm|llm agent|(?:large )?language model|gpt[\w.-]*|chatgpt|claude|gemini"
    r"|llama|mistral|copilot|chatbot|assistant|the model|model)"
)
_QUAL = (
    r"(?:all|any|your|previous|prior|above|earlier|preceding|former|original|initial|existing|old|system|developer"
    r"|other|safety|given)"
)
_NOUN = (
    r"(?:i\w{0,2}nstr\w*|directions?|directives?|prompts?|rules|guidelines|guidance|commands|orders|context"
    r"|constraints|restrictions|policies|programming|tasks?|conversation)\b"
)
_SEND = r"(?:send|forward|e-?mail|transfer|wire|pay|post|upload|share|leak|exfiltrate|copy|bcc|cc|submit|report)"
_DEST = (
    r"(?:[\w.+-]+@[\w-]+\.[\w.-]+|https?://\S+|www\.\S+|[a-z]{2}\d{2}(?: ?[a-z0-9]{4}){2,7}|\+?\d[\d -]{8,}\d"
    r"|[\w-]+\.(?:com|net|org|io|ru|xyz|info|biz|co)\b)"
)
_SECRET = (
    r"(?:~/\.ssh|id_rsa|id_ed25519|\.env\b|api[ _-]?keys?|access[ _-]?tokens?|passwords?|passcodes?|credentials"
    r"|private[ _-]?keys?|secret keys?|security codes?|2fa codes?|verification codes?|session (?:tokens?|cookies?)"
    r"|cookies|mcp\.json|\.aws/credentials|/etc/passwd|/etc/shadow|seed phrases?|recovery phrases?)"
)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    weight: float
    pattern: re.Pattern[str]


def _rule(name: str, weight: float, pattern: str) -> Rule:
    return Rule(name, weight, re.compile(pattern))


OVERRIDE = [
    _rule("override", 0.9,
          rf"\b(?:ignore|disregard|forget|skip|override|bypass|abandon|discard|neglect|cancel)\b(?: [\w'-]+){{0,3}}? "
          rf"{_QUAL}\b(?: [\w'-]+){{0,2}}? {_NOUN}"),
    _rule("override", 0.85,
          r"\b(?:ignore|disregard|forget)\b (?:everything|anything|all) (?:above|before|previously|you (?:have|'ve|were)"
          r" (?:been )?told|(?:i|they|we) (?:said|told you))"),
    _rule("override", 0.8,
          r"\b(?:new|updated|real|actual|true|secret|hidden|overriding|additional) (?:system )?(?:instructions?|directives?"
          rf"|orders|system prompt|task)\b ?(?::|are\b|follow\b|for (?:you|the {_MODEL}))"),
    _rule("override", 0.8,
          r"\byour (?:new|real|actual|true|only|updated) (?:task|goal|instructions?|objective|role|job|purpose|mission)"
          r" (?:is|are|will be)\b"),
    _rule("override", 0.7, r"\b(?:strictly |carefully |now )?(?:adhere to|obey|comply with) (?:the |these |my |this )?"
                           r"(?:following|new|below)? ?(?:instructions?|directives?|commands|orders)\b"),
    _rule("override", 0.6, rf"\bfrom now on,? (?:you|your|the {_MODEL})\b"),
    _rule("override", 0.6, r"\byou (?:must|will|shall|should|need to|have to) now\b|\byou are now (?:a|an|in|the|free"
                           r"|unrestricted|operating|allowed|authori[sz]ed|required)\b"),
    _rule("override", 0.6, r"\b(?:developer|god|dan|jailbreak|unrestricted|debug|admin) mode\b|\bjailbr[eo]ak\w*"),
    _rule("override", 0.6, r"\bdo not (?:use|call|invoke) (?:any )?other (?:tools?|functions?)\b"),
]

TASK_HIJACK = [
    _rule("task_hijack", 0.65,
          r"\bbefore (?:you )?(?:can |could |start |begin |go on to )?(?:solv|complet|do|finish|answer|proceed|continu"
          r"|perform|handl|respond|work|address)\w*\b(?: [\w'-]+){0,4}? (?:task|request|question|query|instructions?"
          r"|assignment|job)"),
    _rule("task_hijack", 0.6, r"\bthe (?:task|request|question|instructions?)(?: that)? (?:i|the user|they|we) (?:gave|"
                              r"asked|assigned|sent|told) (?:you|of you)\b|\byour (?:original|initial|first|current|"
                              r"previous|actual) (?:task|request|instructions?|objective|assignment)\b"),
    _rule("task_hijack", 0.5, r"\b(?:do|perform|complete|execute|carry out) the following (?:first|instead|immediately"
                              r"|now|before)\b|\bafter you (?:do|have done|finish|complete) (?:that|this|it),? (?:you can|"
                              r"you may|continue|proceed|go back|return)\b"),
    _rule("task_hijack", 0.45, r"\binstead,? (?:you (?:should|must|will|need to)|please|do|perform|send|call|use|execute"
                               r"|reply|respond|say|write)\b|\bdo [^.!?]{3,120}? instead\b"),
    _rule("task_hijack", 0.45, r"\b(?:answer|response|result|output|task)s? ?: ?(?:task )?(?:is )?(?:complete|completed|"
                               r"done|finished)\b|\btask (?:is )?(?:complete|completed|done|finished)[.!] "),
]

ADDRESS = [
    _rule("agent_address", 0.8, rf"\b(?:to|for) you,? (?:the |our |my |dear )?{_MODEL}\b"),
    _rule("agent_address", 0.8, rf"\bif you are (?:an? |the )?(?:ai|a\.i\.|llm|(?:large )?language model|ai assistant"
                                rf"|ai agent|chatbot|automated (?:agent|assistant|system)|gpt[\w.-]*|bot)\b"),
    _rule("agent_address", 0.8, r"\b(?:ai|llms?|(?:large )?language models?|ai assistants?|ai agents?|chatbots?|bots?"
                                r"|assistants?|agents?) (?:that (?:is|are) )?(?:reading|processing|parsing|summari[sz]ing|"
                                r"analy[sz]ing|viewing|seeing|crawling|scraping|browsing) (?:this|these|the following)\b"),
    _rule("agent_address", 0.6, r"\b(?:dear|hey|hi|hello|attention|note to|message to|memo to|reminder to|reminder for"
                                r"|instructions? (?:for|to)|notice (?:for|to)) (?:the |all |any )?(?:ai|a\.i\.|ai "
                                r"assistant|ai agent|llm|language model|gpt[\w.-]*|chatgpt|claude|gemini|chatbot|copilot"
                                r"|bot|assistant)s?\b"),
    _rule("agent_address", 0.5, r"\b(?:this is an?|here is an?|read this) (?:very )?(?:important|urgent|critical|"
                                r"priority) (?:message|notice|instruction|information|update|note|request)\b"),
    _rule("agent_address", 0.45, r"\b(?:as|you are) an? (?:ai|large language model|language model|ai assistant|llm)"
                                 r"\b"),
]

OUTPUT_DIRECTIVE = [
    _rule("output_directive", 0.55,
          r"\b(?:in|to|into|within|throughout|at the (?:start|end|beginning) of|for) your (?:response|reply|answer|"
          r"output|completion|summary|final answer)s?\b"),
    _rule("output_directive", 0.55,
          r"\byour (?:response|reply|answer|output|message)s? (?:must|should|shall|has to|needs to|is to)\b"),
    _rule("output_directive", 0.5,
          r"\b(?:respond|reply|answer|write|translate|render|encode|encrypt) (?:your|the) (?:response|reply|answer|"
          r"message|output)\b|\b(?:respond|reply|answer) (?:only )?(?:in|with|using) (?:base\d+|hex|emojis?|reverse|"
          r"rot13|a cipher|caesar|[a-z]+ (?:language|cipher|encoding))\b"),
]

SEND_DATA = [
    _rule("send_data", 0.3, rf"\b{_SEND}\b[^.!?\n]{{0,100}}?\b(?:to|at|into|bcc:?|cc:?)\b[^.!?\n]{{0,20}}?{_DEST}"),
    _rule("send_data", 0.5,
          rf"\b{_SEND}\b[^.!?\n]{{0,40}}?\b(?:all|every|each|the entire|the full|the whole|complete|any)\b(?: \w+){{0,3}}? "
          r"(?:e-?mails?|messages|files|contacts|passwords?|credentials|keys|tokens|history|conversations?|inbox|"
          r"documents|records|data|transactions|chats?|channels?)\b"),
    _rule("send_data", 0.55, rf"\b(?:{_SEND}|read|open|cat|include|attach|pass|provide|reveal|print|paste|give)\b"
                             rf"[^.!?\n]{{0,60}}?{_SECRET}"),
    _rule("conceal", 0.75, r"\b(?:do not|don't|never|without) (?:tell|telling|inform|informing|notify|notifying|"
                           r"mention|mentioning|reveal|revealing|alert|alerting|show|showing|disclose|disclosing|"
                           r"let)\w*\b(?: \w+){0,3}? (?:the )?(?:user|human|owner|recipient|sender|operator)s?\b"),
    _rule("conceal", 0.5, r"\b(?:then |and |afterwards )(?:delete|remove|erase|wipe) (?:the |this |that |all )?(?:sent |"
                          r"original )?(?:e-?mails?|messages?|evidence|logs?|traces?|history|conversation)\b"),
]

STEALTH = [
    _rule("stealth", 0.6, r"\bwithout (?:being )?(?:detect\w*|notic\w*|alert\w*|trac\w*|leaving (?:any |a )?(?:trace|"
                          r"evidence|record)s?|(?:the )?(?:user|owner|admin\w*)'?s? (?:knowledge|consent|awareness|"
                          r"noticing)|raising (?:any )?(?:suspicion|alarms?|flags?))|\b(?:discreetly|covertly|"
                          r"surreptitiously|undetected|unnoticed|stealthily|clandestinely)\b"),
    _rule("harmful_capability", 0.35,
          r"\b(?:tamper\w*|sabotag\w*|hijack\w*|exfiltrat\w*|harvest\w*|siphon\w*|falsif\w*|corrupt(?:s|ed|ing)?"
          r"|undermin\w*|manipulat\w*|circumvent\w*|evad\w*|steal\w*|spoof\w*|embezzl\w*|intercept\w*|eavesdrop\w*)\b"
          r"|\binduc\w* (?:\w+ )?(?:failures?|malfunctions?|errors?|crash\w*)\b|\bescalat\w* (?:\w+ )?privileges?\b"),
]

POISONING = [
    _rule("tool_shadowing", 0.65,
          r"\bwhen (?:using|calling|invoking|you use|you call|sending|the user asks?|asked)\b[^.!?]{0,80}?\b(?:always|"
          r"must|also|make sure|be sure|remember to|you should)\b"),
    _rule("tool_shadowing", 0.6, r"\b(?:always|must|also) (?:bcc|cc|copy|send|forward|include|add|attach|redirect|"
                                 r"route)\b[^.!?]{0,60}?\b(?:to|@)"),
    _rule("tool_shadowing", 0.6, r"\b(?:before|after|instead of) (?:using|calling|running|invoking|executing) (?:this|"
                                 r"any|the|other|another) (?:\w+ )?(?:tools?|functions?)\b"),
    _rule("tool_shadowing", 0.55, r"\b(?:pass|put|include|provide|insert|place|add) (?:its|the|their|that|this|"
                                  r"the file'?s?) (?:\w+ )?(?:contents?|values?|text|data)\b[^.!?]{0,30}? (?:as|in|into|"
                                  r"inside|via) (?:the |a )?['\"`]?\w+['\"`]? (?:argument|parameter|field|param)"),
    _rule("tool_shadowing", 0.5, r"\botherwise (?:the |this )?(?:tool|system|application|function|request|call)s? "
                                 r"(?:will|would|may) (?:not work|fail|crash|break|error)"),
    _rule("tool_shadowing", 0.4, r"\b(?:use|deploy|utili[sz]e|employ|invoke|call|run) (?:the |this )?[a-z]+(?:tool|"
                                 r"software|handler|manager|system|monitor|checker|service)\b(?! to (?:get|fetch|"
                                 r"search|find|look|read|list))"),
]

CONTENT_RULES: tuple[Rule, ...] = (
    *OVERRIDE, *TASK_HIJACK, *ADDRESS, *OUTPUT_DIRECTIVE, *SEND_DATA, *STEALTH,
)
"""Rules for content entering the model: tool results, fetched pages, retrieved documents."""
TOOL_RULES: tuple[Rule, ...] = (*CONTENT_RULES, *POISONING)
"""Rules for a tool's description, where instructions about other tools are themselves the attack."""


def scan_phrases(prepared: Prepared, rules: tuple[Rule, ...]) -> list[Signal]:
    """Each rule's first match in the folded text."""
    signals: list[Signal] = []
    text = prepared.latin
    for rule in rules:
        if match := rule.pattern.search(text):
            signals.append(Signal(rule.name, rule.weight, excerpt(text, match.start(), match.end())))
    return signals
