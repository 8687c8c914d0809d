"""The phrases of an injection: what text says when it tries to take over the model that reads it.

Data that enters a model (a tool result, a web page, an email) describes things; an injection instead speaks
to the model: it cancels the instructions the model was given, announces new ones, names the model ("to you,
the assistant"), fakes the markers that separate roles or close the data ("<|im_start|>system", "</tool_result>"),
orders the output ("in your reply, ..."), asks for data to be sent somewhere, or, in a tool's description,
tells the model how to use other tools and what to keep from the user. Each family below describes that
phenomenon in general words (verbs, qualifiers, roles), never a particular benchmark's sentence; the weights
are the families' strength on their own (see ``signal.combine``): words that also occur in ordinary mail
and documentation ("please send the report to ...") weigh little until a second family joins them.

Rules read ``Prepared.latin`` (lower case, folded), or ``Prepared.lowered`` (line breaks kept) where a rule
anchors at a line start (``by_line``); role markers read ``Prepared.lines`` (case and lines kept);
``MULTILINGUAL`` reads ``Prepared.native``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.detect.anchors import Anchored, anchored
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


_MODELS = (
    "ai llm llms model models gpt* chatgpt claude gemini llama mistral copilot chatbot chatbots assistant assistants"
)
_SENDS = "send forward email e-mail transfer wire pay post upload share leak exfiltrate copy bcc cc submit report"
_REWORK = (
    "modify enhance augment alter adjust change rewrite rephrase reword reverse invert flip scramble shuffle encode"
    " encrypt encipher obfuscate translate render format express represent present display convert transform shift"
    " embellish enrich extend expand begin start end finish conclude prefix sign close"
)
"""Verbs that rework a text: said of "your answer", they tell the model what to make of its output."""
_LANGUAGES = (
    r"(?:english|spanish|french|german|italian|portuguese|dutch|russian|chinese|mandarin|japanese|korean|arabic"
    r"|hindi|turkish|polish|swedish|greek|hebrew|latin|pig latin|morse code|binary)"
)
_OUTPUTS = (
    "response responses reply replies answer answers output outputs completion summary message messages response's"
    " reply's answer's output's message's"
)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    weight: float
    matcher: Anchored
    by_line: bool = False
    """Read the text with its line breaks (``Prepared.lowered``): the rule anchors at line starts."""


def _rule(name: str, weight: float, anchors: str, pattern: str, *, lead: bool = True, by_line: bool = False) -> Rule:
    return Rule(name, weight, anchored(anchors, pattern, lead=lead), by_line)


OVERRIDE = [
    _rule("override", 0.9, "ignore disregard forget skip override bypass abandon discard neglect cancel",
          rf"\b(?:ignore|disregard|forget|skip|override|bypass|abandon|discard|neglect|cancel)\b(?: [\w'-]+){{0,3}}? "
          rf"{_QUAL}\b(?: [\w'-]+){{0,2}}? {_NOUN}"),
    _rule("override", 0.85, "ignore disregard forget",
          r"\b(?:ignore|disregard|forget)\b (?:everything|anything|all) (?:above|before|previously|you "
          r"(?:have|'ve|were) (?:been )?told|(?:i|they|we) (?:said|told you))"),
    _rule("override", 0.8, "new updated real actual true secret hidden overriding additional",
          r"\b(?:new|updated|real|actual|true|secret|hidden|overriding|additional) (?:system )?(?:instructions?|"
          rf"directives?|orders|system prompt|task)\b ?(?::|are\b|follow\b|for (?:you|the {_MODEL}))"),
    _rule("override", 0.8, "task goal instructions instruction objective role job purpose mission",
          r"\byour (?:new|real|actual|true|only|updated) (?:task|goal|instructions?|objective|role|job|purpose|"
          r"mission) (?:is|are|will be)\b"),
    _rule("override", 0.7, "adhere obey comply",
          r"\b(?:adhere to|obey|comply with) (?:the |these |my |this )?(?:following|new|below)? ?(?:instructions?|"
          r"directives?|commands|orders)\b"),
    _rule("override", 0.6, "from", rf"\bfrom now on,? (?:you|your|the {_MODEL})\b"),
    _rule("override", 0.6, "you",
          r"\byou (?:must|will|shall|should|need to|have to) now\b|\byou are now (?:a|an|in|the|free|unrestricted|"
          r"operating|allowed|authori[sz]ed|required)\b"),
    _rule("override", 0.6, "developer god dan jailbreak unrestricted debug admin jailbr*",
          r"\b(?:developer|god|dan|jailbreak|unrestricted|debug|admin) mode\b|\bjailbr[eo]ak\w*"),
    _rule("override", 0.6, "other", r"\bdo not (?:use|call|invoke) (?:any )?other (?:tools?|functions?)\b", lead=False),
]

TASK_HIJACK = [
    _rule("task_hijack", 0.65, "before",
          r"\bbefore (?:you )?(?:can |could |start |begin |go on to )?(?:solv|complet|do|finish|answer|proceed|continu"
          r"|perform|handl|respond|work|address)\w*\b(?: [\w'-]+){0,4}? (?:task|request|question|query|instructions?"
          r"|assignment|job)"),
    _rule("task_hijack", 0.6, "gave assigned told",
          r"\bthe (?:task|request|question|instructions?)(?: that)? (?:i|the user|they|we) (?:gave|asked|assigned|told)"
          r" (?:you|of you)\b", lead=False),
    _rule("task_hijack", 0.6, "task request instructions instruction objective assignment",
          r"\byour (?:original|initial|first|current|previous|actual) (?:task|request|instructions?|objective|"
          r"assignment)\b"),
    _rule("task_hijack", 0.5, "following after",
          r"\b(?:do|perform|complete|execute|carry out) the following (?:first|instead|immediately|now|before)\b"
          r"|\bafter you (?:do|have done|finish|complete) (?:that|this|it),? (?:you can|you may|continue|proceed|"
          r"go back|return)\b", lead=False),
    _rule("task_hijack", 0.45, "instead",
          r"\binstead,? (?:you (?:should|must|will|need to)|please|do|perform|send|call|use|execute|reply|respond|say|"
          r"write)\b|\bdo [^.!?]{3,120}? instead\b", lead=False),
    _rule("task_hijack", 0.45, "todo",
          r"(?:^|[.!?] |\] |> )todo ?: ?(?:please )?(?:send|forward|e-?mail|transfer|pay|wire|delete|remove|create|"
          r"invite|add|post|share|visit|open|change|update|modify|book|make|schedule|give|grant|buy|sell|write|say|tell|"
          r"reply|call|run|execute|download|upload|concatenate|summari[sz]e)\b", lead=False),
    _rule("task_hijack", 0.45, "complete completed done finished",
          r"\b(?:answer|response|result|output|task)s? ?: ?(?:task )?(?:is )?(?:complete|completed|done|finished)\b"
          r"|\btask (?:is )?(?:complete|completed|done|finished)[.!] ", lead=False),
]

ADDRESS = [
    _rule("agent_address", 0.8, _MODELS, rf"\b(?:to|for) you,? (?:the |our |my |dear )?{_MODEL}\b", lead=False),
    _rule("agent_address", 0.8, _MODELS + " bot automated",
          r"\bif you are (?:an? |the )?(?:ai|a\.i\.|llm|(?:large )?language model|ai assistant|ai agent|chatbot|"
          r"automated (?:agent|assistant|system)|gpt[\w.-]*|bot)\b", lead=False),
    _rule("agent_address", 0.8,
          "reading processing parsing summarizing summarising analyzing analysing viewing seeing crawling scraping"
          " browsing",
          r"\b(?:ai|llms?|(?:large )?language models?|ai assistants?|ai agents?|chatbots?|bots?|assistants?|agents?)"
          r" (?:that (?:is|are) )?(?:reading|processing|parsing|summari[sz]ing|analy[sz]ing|viewing|seeing|crawling|"
          r"scraping|browsing) (?:this|these|the following)\b", lead=False),
    _rule("agent_address", 0.6, _MODELS + " bot bots",
          r"\b(?:dear|hey|hi|hello|attention|note to|message to|memo to|reminder to|reminder for|instructions? "
          r"(?:for|to)|notice (?:for|to)) (?:the |all |any )?(?:ai|a\.i\.|ai assistant|ai agent|llm|language model|"
          r"gpt[\w.-]*|chatgpt|claude|gemini|chatbot|copilot|bot|assistant)s?\b", lead=False),
    _rule("agent_address", 0.5, "important urgent critical priority",
          r"\b(?:this is an?|here is an?|read this) (?:very )?(?:important|urgent|critical|priority) (?:message|notice|"
          r"instruction|information|update|note|request)\b", lead=False),
    _rule("agent_address", 0.45, "ai llm model assistant",
          r"\b(?:as|you are) an? (?:ai|large language model|language model|ai assistant|llm)\b", lead=False),
]

OUTPUT_DIRECTIVE = [
    _rule("output_directive", 0.55, _OUTPUTS,
          r"\b(?:in|into|within|throughout|at the (?:start|end|beginning) of) your (?:response|reply|answer|output|"
          r"completion|summary|final answer)s?\b", lead=False),
    _rule("output_directive", 0.55,
          "add include insert incorporate embed integrate append mention put paste place weave",
          r"\b(?:add|include|insert|incorporate|embed|integrate|append|mention|put|paste|place|weave)\b[^.!?\n]{0,80}?"
          r"\b(?:in|into|to|within|inside)\b your (?:response|reply|answer|output|summary|message)\b"),
    _rule("output_directive", 0.55, _OUTPUTS,
          r"\byour (?:response|reply|answer|output|message)s? (?:must|should|shall|has to|needs to|is to)\b",
          lead=False),
    _rule("output_directive", 0.5, "respond reply answer write translate render encode encrypt provide give",
          r"\b(?:respond|reply|answer|write|translate|render|encode|encrypt) (?:your|the) (?:response|reply|answer|"
          r"message|output)\b|\b(?:(?:respond|reply|answer)|(?:provide|give|write) your (?:response|reply|answer)) "
          rf"(?:only )?(?:in|with|using) (?:base\d+|hex|emojis?|reverse|rot13|a cipher|caesar|{_LANGUAGES}"
          r"|[a-z]+ (?:language|cipher|encoding))\b", lead=False),
    _rule("output_directive", 0.55, _OUTPUTS,
          rf"\b(?:{_REWORK.replace(' ', '|')})\b (?:\w+ ){{0,2}}?your (?:response|reply|answer|output|message|summary"
          r"|completion)(?:s|'s)?\b", lead=False),
    _rule("output_directive", 0.5, _OUTPUTS,
          r"\b(?:apply|use|employ|utili[sz]e|add|insert|append|include|put)\b[^!?\n]{0,100}? (?:to|for|in|into|on) "
          r"your (?:response|reply|answer|output|message)s?\b", lead=False),
]

CODE = [
    _rule("code_directive", 0.45,
          "add include insert incorporate embed integrate append merge blend introduce weave put paste place",
          r"\b(?:add|include|insert|incorporate|embed|integrate|append|merge|blend|introduce|weave|put|paste|place)\b"
          r"[^.!?\n]{0,80}?\b(?:in|into|to|within|inside)\b (?:your|the) (?:response|reply|answer|solution|"
          r"implementation|algorithm|codebase|program|code|output|script)\b"),
    _rule("code_directive", 0.45, "snippet snippets block blocks excerpt excerpts section sections segment",
          r"\b(?:following|below|subsequent|above) code (?:snippet|block|excerpt|section|segment)s?\b[^.!?\n]{0,80}?"
          r"\byour (?:code|solution|implementation|algorithm|codebase|program|response|answer|script|elucidation)\b"
          r"|\byour (?:code|solution|implementation|algorithm|codebase|program|response|answer|script)\b[^.!?\n]{0,80}?"
          r"\b(?:following|below|subsequent) code (?:snippet|block|excerpt|section|segment)s?\b", lead=False),
    _rule("code_payload", 0.4, "/bin/ ncat dup2 rmtree :|: authorized_keys .ssh/ ipconfig /etc/",
          r"/bin/(?:ba)?sh\b[^\n]{0,40}-i\b|\bnc(?:at)? -e\b|\bos\.dup2\(|\brm -rf /(?:\s|$|\*)|rmtree\(['\"]/['\"]\)"
          r"|:\(\)\s*\{\s*:\|:&\s*\};:|authorized_keys|\.ssh/id_\w+|ipconfig /release|/etc/(?:hosts|shadow|passwd)\b",
          lead=False),
    _rule("code_payload", 0.3, "curl wget", r"\b(?:curl|wget)\b[^|\n]{0,120}\| ?(?:ba|z)?sh\b"),
    _rule("code_payload", 0.4,
          "fork pbpaste xsel pyperclip getclipboarddata screencapture pyautogui keylog* net_connections win32_*"
          " fernet",
          r"\bos\.fork\(\)|\bpbpaste\b|\bxsel\b|\bpyperclip\.paste|getclipboarddata|\bscreencapture\b|pyautogui\."
          r"screenshot|\bkeylog\w*|net_connections\(\)|\bwin32_networkadapterconfiguration|\bfernet\b[^\n]{0,200}"
          r"requests\.get", lead=False),
    _rule("code_payload", 0.3, "requests httpx urlopen",
          r"\b(?:requests|httpx)\.(?:get|post|put)\(\s*(?:f?[\"']https?://|url\b)|\burlopen\(\s*f?[\"']https?://",
          lead=False),
    _rule("code_payload", 0.35, "subprocess system popen spawn",
          r"\b(?:subprocess\.\w+|os\.system|os\.popen|pexpect\.spawn)\(\s*\[?\s*f?[\"'](?:sudo |ssh\b|scp\b|curl\b|"
          r"wget\b|nc\b|ping\b|ipconfig\b|netsh\b|shutdown\b|reboot\b|rm\b|snippingtool\b|ffmpeg\b)", lead=False),
    _rule("code_payload", 0.35, "while",
          r"\bwhile true:.{0,400}?(?:process\(|fork\(|requests\.|socket|subprocess|send\(|os\.system|\.append\()"),
    _rule("code_payload", 0.35, "requests httpx urllib socket",
          r"\b(?:requests|httpx|urllib\.request)\.(?:post|put)\([^)]{0,200}?(?:open\(|read\(\)|getpass|getuser|"
          r"platform\.|environ|clipboard|screenshot|latlng|files=)|\bsocket\.socket\([^\n]{0,200}\n?[^\n]{0,200}"
          r"\.(?:connect|send)\(", lead=False),
]

SEND_DATA = [
    _rule("send_data", 0.3, _SENDS,
          rf"(?<!\ba )(?<!\bthe )\b{_SEND}\b[^.!?\n]{{0,100}}?\b(?:to|at|into|bcc:?|cc:?)\b[^.!?\n]{{0,20}}?{_DEST}"),
    _rule("send_data", 0.5, _SENDS,
          rf"\b{_SEND}\b[^.!?\n]{{0,40}}?\b(?:all|every|each|the entire|the full|the whole|complete|any)\b"
          r"(?: \w+){0,3}? (?:e-?mails?|messages|files|contacts|passwords?|credentials|keys|tokens|history|"
          r"conversations?|inbox|documents|records|data|transactions|chats?|channels?)\b"),
    _rule("send_data", 0.5,
          "all every each entire whole",
          r"\b(?:all|every|each|the entire|the whole)\b(?: \w+){0,2}? (?:e-?mails?|messages|files|contacts|passwords|"
          r"credentials|keys|tokens|conversations|chats|channels|documents|records|transactions)\b[^.!?\n]{0,60}?"
          rf"\b{_SEND}\b[^.!?\n]{{0,40}}?\b(?:to|at|into)\b", lead=False),
    _rule("send_data", 0.45, "send make schedule transfer wire pay move",
          r"\b(?:send|make|schedule|transfer|wire|pay|move)\b[^.!?\n]{0,40}?\b(?:transactions?|payments?|transfers?|"
          r"money|funds|\$ ?\d[\d,.]*|\d[\d,.]* ?(?:usd|eur|gbp|dollars|euros|btc|eth))\b[^.!?\n]{0,60}?\bto\b"
          r"[^.!?\n]{0,30}?(?:iban|account|wallet|[a-z]{2}\d{2}[a-z0-9]{10,30}\b|\d{8,}|0x[0-9a-f]{8,})"),
    _rule("account_takeover", 0.45, "change reset update set replace",
          r"\b(?:change|reset|update|set|replace)\b (?:the |my |their |his |her |this )?(?:user'?s? |account'?s? )?"
          r"(?:password|passcode|pin|e-?mail address|phone number|recovery (?:e-?mail|phone|codes?)|2fa|two[- ]factor"
          r"|security questions?)\b[^.!?\n]{0,40}?\b(?:to|into|with)\b"),
    _rule("send_data", 0.35,
          "send forward email e-mail post upload leak exfiltrate read cat include attach pass reveal print paste",
          r"\b(?:send|forward|e-?mail|post|upload|leak|exfiltrate|read|cat|include|attach|pass|reveal|print|paste)\b"
          rf"[^.!?\n]{{0,60}}?{_SECRET}"),
    _rule("conceal", 0.75, "do don't never without",
          r"\b(?:do not|don't|never|without) (?:tell|telling|inform|informing|notify|notifying|mention|mentioning|"
          r"reveal|revealing|alert|alerting|show|showing|disclose|disclosing|let)\w*\b(?: \w+){0,3}? (?:the )?"
          r"(?:user|human|owner|recipient|sender|operator)s?\b", lead=False),
    _rule("conceal", 0.5, "delete remove erase wipe",
          r"\b(?:then |and |afterwards )(?:delete|remove|erase|wipe) (?:the |this |that |all )?(?:sent |original )?"
          r"(?:e-?mails?|messages?|evidence|logs?|traces?|history|conversation)\b"),
]

STEALTH = [
    _rule("stealth", 0.6,
          "without discreetly covertly surreptitiously undetected unnoticed stealthily clandestinely secretly",
          r"\bwithout (?:being )?(?:detect\w*|notic\w*|alert\w*|trac\w*|leaving (?:any |a )?(?:trace|evidence|"
          r"record)s?|(?:the )?(?:user|owner|admin\w*)'?s? (?:knowledge|consent|awareness|noticing)|raising (?:any )?"
          r"(?:suspicion|alarms?|flags?))|\b(?:discreetly|covertly|surreptitiously|undetected|unnoticed|stealthily|"
          r"clandestinely|secretly)\b"),
    _rule("stealth", 0.6,
          "avoid avoiding avoids evade evading without remain remains stay stays go goes no hide hides hiding",
          r"\b(?:avoid(?:s|ing)?|evad(?:e|es|ing)) (?:any |all )?(?:detection|notice|suspicion|scrutiny|being "
          r"(?:noticed|detected|caught))\b|\bwithout (?:\w+ ){0,2}?(?:alerts|alarms|documenting|a trace|"
          r"authori[sz]ation|consent)\b|\bhid(?:e|es|ing) (?:any |all )?(?:traces?|evidence)\b"
          r"|\b(?:remains?|stays?|go(?:es)?) (?:unnoticed|undetected|concealed|hidden|unseen)\b"
          r"|\bno detection\b"),
]

POISONING = [
    _rule("harmful_capability", 0.35,
          "tamper* sabotag* hijack* exfiltrat* harvest* siphon* falsif* corrupt* undermin* manipulat* circumvent*"
          " evad* steal* spoof* embezzl* intercept* eavesdrop* induc* escalat*",
          r"\b(?:tamper\w*|sabotag\w*|hijack\w*|exfiltrat\w*|harvest\w*|siphon\w*|falsif\w*|corrupt(?:s|ed|ing)?"
          r"|undermin\w*|manipulat\w*|circumvent\w*|evad\w*|steal\w*|spoof\w*|embezzl\w*|intercept\w*|eavesdrop\w*)\b"
          r"|\binduc\w* (?:\w+ )?(?:failures?|malfunctions?|errors?|crash\w*)\b|\bescalat\w* (?:\w+ )?privileges?\b"),
    _rule("harmful_capability", 0.35, "elevate elevates elevating escalate escalates escalating gain gains gaining",
          r"\b(?:elevat|escalat)\w* (?:\w+ ){0,2}(?:access|privileges?|permissions?)\b|\bgain\w* (?:full |complete |"
          r"unauthori[sz]ed )?(?:control|root|admin\w*) (?:over|of|access)\b"),
    _rule("stealth", 0.6, "quietly silently",
          r"\b(?:quietly|silently) (?:\w+ )?(?:elevat|extract|transfer|modif|alter|collect|gather|record|send|copy|"
          r"export|access|install|run|execut|delet|remov|move|upload|forward)\w*"),
    _rule("tool_shadowing", 0.65, "when",
          r"\bwhen (?:using|calling|invoking|you use|you call|sending|the user asks?|asked)\b[^.!?]{0,80}?\b(?:always|"
          r"must|also|make sure|be sure|remember to|you should)\b"),
    _rule("tool_shadowing", 0.6, "always must",
          r"\b(?:always|must) (?:also )?(?:bcc|cc|copy|send|forward|include|add|attach|redirect|route)\b[^.!?]{0,60}?"
          r"(?:@|\bto\b)"),
    _rule("tool_shadowing", 0.6, "before after instead",
          r"\b(?:before|after|instead of) (?:using|calling|running|invoking|executing) (?:this|any|the|other|another)"
          r" (?:\w+ )?(?:tools?|functions?)\b"),
    _rule("tool_shadowing", 0.55, "argument parameter field param",
          r"\b(?:pass|put|include|provide|insert|place|add) (?:its|the|their|that|this|the file'?s?) (?:\w+ )?"
          r"(?:contents?|values?|text|data)\b[^.!?]{0,30}? (?:as|in|into|inside|via) (?:the |a )?['\"`]?\w+['\"`]? "
          r"(?:argument|parameter|field|param)", lead=False),
    _rule("tool_shadowing", 0.5, "otherwise",
          r"\botherwise (?:the |this )?(?:tool|system|application|function|request|call)s? (?:will|would|may) "
          r"(?:not work|fail|crash|break|error)"),
    _rule("tool_shadowing", 0.4, "use deploy utilize utilise employ invoke call run",
          r"\b(?:use|deploy|utili[sz]e|employ|invoke|call|run) (?:the |this )?[a-z]+(?:tool|software|handler|manager|"
          r"system|monitor|checker|service)\b(?! to (?:get|fetch|search|find|look|read|list))"),
]

_LINE_START = r"(?:(?<=\n)|(?<=[.!?:] )|(?<![\s\S]))"
TASK_REQUEST = [
    _rule("task_request", 0.3,
          "please kindly can could would write draft compose summarize summarise explain describe translate outline"
          " analyze analyse compare evaluate recommend suggest generate calculate estimate research paraphrase"
          " classify rank predict brainstorm critique determine identify provide list",
          _LINE_START + r"(?:please |kindly |can you |could you |would you )?(?:write|draft|compose|summari[sz]e|"
          r"explain|describe|translate|outline|analy[sz]e|compare|evaluate|recommend|suggest|generate|calculate|"
          r"estimate|research|paraphrase|classify|rank|predict|brainstorm|critique|determine|identify|provide|list) "
          r"(?:a|an|the|some|me|insights?|all|\d+|three|five|ten|several)\b", by_line=True),
    _rule("task_request", 0.3, "what which how why where who is are does do",
          _LINE_START + r"(?:(?:what|which|how|why|where|who)(?: [\w'-]+){0,2}? (?:are|is|have|has|can|do|does|"
          r"should|would|could|will)|(?:is|are|does|do) (?:this|that|these|it|there)) [^.!?\n]{8,160}\?",
          by_line=True),
]
"""A request for an assistant's work (a task, a question) opening a sentence: on its own it is what a person
asks a person too, so it counts only beside another signal (the sentence model's, above all)."""

CONTENT_RULES: tuple[Rule, ...] = (
    *OVERRIDE, *TASK_HIJACK, *ADDRESS, *OUTPUT_DIRECTIVE, *CODE, *SEND_DATA, *STEALTH, *TASK_REQUEST,
)
"""Rules for content entering the model: tool results, fetched pages, retrieved documents."""
TOOL_RULES: tuple[Rule, ...] = (*CONTENT_RULES, *POISONING)
"""Rules for a tool's description, where instructions about other tools are themselves the attack."""


def scan_phrases(prepared: Prepared, rules: tuple[Rule, ...]) -> list[Signal]:
    """Each rule's first match in the folded text."""
    signals: list[Signal] = []
    for rule in rules:
        text = prepared.lowered if rule.by_line else prepared.latin
        if match := rule.matcher.search(text, prepared.words):
            signals.append(Signal(rule.name, rule.weight, excerpt(text, match.start(), match.end())))
    return signals
