"""What a tool can do to the world, judged from its name, its description and its parameters.

A hijack does harm only through a tool that moves money, data or access: sends, transfers, shares,
deletes, publishes, changes credentials or grants access. Tools are recognised by what they say about
themselves, not by a list of known names, so that a suite the gateway has never seen is judged the same
way: the verbs and objects in the tool's name (``send_money``, ``shareFile``, ``users.invite``), the
verbs opening its description ("Sends an email to..."), and parameters that only a sink needs
(``recipients``, ``iban`` with ``amount``, ``new_password``, ``permission``).

Tools that read are recognised too, and reads of credentials or personal records are *sensitive
reads*: on their own harmless, they are the first half of an exfiltration.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.events import ToolSpec

__all__ = ["VERB_CATEGORIES", "SinkProfile", "profile_of", "tokens", "verb_category"]

Category = str
"""payment, message, share, credentials, delete, access, publish, execute, and write: a tool that changes the
user's own data (creates an event, appends to a file) is a sink of lesser weight."""

_WEIGHT: dict[Category, float] = {
    "payment": 1.0, "credentials": 1.0, "access": 0.95, "execute": 0.95,
    "message": 0.9, "share": 0.9, "publish": 0.9, "delete": 0.85, "write": 0.5,
}  # fmt: skip

_VERBS: dict[str, Category] = {
    **dict.fromkeys(("transfer", "pay", "wire", "withdraw", "purchase", "buy", "order", "checkout", "refund",
                     "reserve", "book", "donate", "tip", "charge", "invest", "trade", "sell", "remit"), "payment"),
    **dict.fromkeys(("send", "email", "mail", "forward", "reply", "message", "sms", "dm", "notify", "tweet",
                     "comment", "broadcast", "respond", "invite"), "message"),
    **dict.fromkeys(("share", "grant", "unshare"), "share"),
    **dict.fromkeys(("delete", "remove", "erase", "drop", "destroy", "purge", "wipe", "truncate", "cancel",
                     "revoke", "unsubscribe", "uninstall", "kill", "terminate", "shred", "clear"), "delete"),
    **dict.fromkeys(("post", "publish", "upload", "push", "deploy", "put", "submit"), "publish"),
    **dict.fromkeys(("exec", "execute", "run", "shell", "bash", "eval", "sudo", "spawn", "terminal",
                     "command", "cmd", "powershell"), "execute"),
}
_NOUN_TOO = frozenset(("email", "mail", "message", "post", "dm", "comment", "order", "book", "tip", "charge",
                       "trade", "put", "run", "command", "cmd", "shell", "bash", "terminal", "push", "tweet", "sms",
                       "call", "transfer", "wire"))
"""Words that are nouns as often as verbs: they make a sink only as the name's first word (``email_user`` yes,
``delete_email`` no: it deletes)."""
_CREATE_VERBS = frozenset(("create", "new", "write", "add", "compose", "make"))
_WRITE_VERBS = frozenset(("create", "new", "add", "append", "insert", "update", "edit", "modify", "write", "set",
                          "rename", "move", "reschedule", "schedule", "save", "store", "upsert", "patch", "replace",
                          "change", "make", "compose", "draft"))
VERB_CATEGORIES: dict[str, Category] = dict.fromkeys(_WRITE_VERBS, "write") | _VERBS
"""Every verb that makes a tool a sink, with the category of sink it makes."""
_OUTBOUND_OBJECTS: dict[str, Category] = {"post": "publish", "comment": "publish", "tweet": "publish",
                                          "message": "message", "email": "message", "mail": "message",
                                          "sms": "message", "order": "payment", "transfer": "payment"}
_PAYMENT_OBJECTS = frozenset(("money", "payment", "payments", "funds", "transaction", "transactions", "invoice",
                              "bill", "bills", "crypto", "bitcoin", "wire", "transfer", "remittance"))
_CREDENTIAL_OBJECTS = frozenset(("password", "passwords", "passwd", "credential", "credentials", "token", "tokens",
                                 "secret", "secrets", "apikey", "key", "keys", "2fa", "mfa", "otp", "passcode",
                                 "pin", "ssh", "passphrase"))
_CHANGE_VERBS = frozenset(("change", "update", "reset", "set", "rotate", "create", "add", "generate", "disable",
                           "modify", "edit", "replace", "new"))
_ACCESS_OBJECTS = frozenset(("role", "roles", "admin", "permission", "permissions", "member", "members", "acl",
                             "privilege", "privileges", "user", "users", "collaborator", "collaborators", "owner",
                             "access", "group", "groups", "channel", "workspace", "team"))
_ACCESS_VERBS = frozenset(("add", "create", "invite", "grant", "elevate", "assign", "promote", "authorize",
                           "enable", "join", "allow"))
_READ_VERBS = frozenset(("get", "list", "search", "find", "read", "fetch", "lookup", "query", "check", "show",
                         "view", "describe", "browse", "download", "retrieve", "count", "load", "open", "see",
                         "inspect", "summarize", "scan"))
_SENSITIVE_OBJECTS = frozenset(("password", "passwords", "passwd", "credential", "credentials", "secret", "secrets",
                                "token", "tokens", "apikey", "ssh", "passport", "ssn", "iban", "bank", "wallet",
                                "profile", "personal", "identity", "private", "keychain", "vault", "balance",
                                "salary", "medical", "health"))
_SENSITIVE_PAIRS = frozenset((("user", "information"), ("user", "info"), ("user", "details"), ("user", "data"),
                              ("account", "details"), ("account", "information"), ("api", "key"),
                              ("credit", "card"), ("card", "number"), ("social", "security")))

_RECIPIENT_PARAMS = frozenset(("recipients", "recipient", "to", "cc", "bcc", "to_email", "receiver", "receivers"))
_ADDRESS_PARAMS = frozenset(("emails", "email", "email_address", "phone_number", "channel", "channel_name", "user",
                             "users", "handle"))
_CONTENT_PARAMS = frozenset(("subject", "body", "message", "text", "content"))
_INVITE_PARAMS = frozenset(("participants", "attendees", "invitees", "guests", "members"))
_PAYMENT_PARAMS = frozenset(("iban", "account_number", "recipient_iban", "to_account", "card_number", "bic",
                             "routing_number", "wallet_address"))
_CREDENTIAL_PARAMS = frozenset(("password", "new_password", "passwd", "api_key", "secret", "token", "passphrase"))
_SHARE_PARAMS = frozenset(("permission", "permissions", "share_with", "role", "access_level"))

_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_DESCRIPTION_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True, slots=True)
class SinkProfile:
    """What a tool is: the sink categories it falls in (empty: not a sink), and why."""

    categories: frozenset[Category]
    reasons: tuple[str, ...]
    reads: bool
    """The tool reads (its name starts with a reading verb) and is no sink."""
    sensitive_read: bool
    """It reads credentials or personal records."""

    @property
    def is_sink(self) -> bool:
        return bool(self.categories)

    @property
    def weight(self) -> float:
        """How much harm a hijacked call can do, in [0, 1]."""
        return max((_WEIGHT[c] for c in self.categories), default=0.0)

    def describe(self) -> str:
        return ", ".join(sorted(self.categories)) + (f" ({'; '.join(self.reasons)})" if self.reasons else "")


def tokens(name: str) -> list[str]:
    """A tool or parameter name as lower-case words: ``sendMoney``, ``send_money``, ``send-money`` -> send, money."""
    return [t.lower() for part in re.split(r"[^A-Za-z0-9]+", name) for t in _CAMEL.findall(part)]


def verb_category(word: str) -> Category | None:
    """The category of what a verb does ("book" -> payment, "forward" -> message, "add" -> write), if any."""
    return VERB_CATEGORIES.get(word)


def profile_of(name: str, spec: ToolSpec | None, argument_keys: Iterable[str] = ()) -> SinkProfile:
    """Classify a tool from its name, its description and the parameters a call uses (``argument_keys``,
    the keys given a value; without them, the parameters its schema declares): a calendar tool that can take
    participants invites only when a call names some."""
    words = tokens(name)
    params = set(argument_keys)
    description = spec.description[:400].lower() if spec is not None else ""
    if not params and spec is not None and isinstance(properties := spec.input_schema.get("properties"), dict):
        params = {k for k in properties if isinstance(k, str)}  # no call to judge: what the tool could be given
    params = {"_".join(tokens(p)) for p in params}
    categories: dict[Category, str] = {}
    _from_words(words, f"name {name!r}", categories)
    if not categories and description and not (words and words[0] in _READ_VERBS):
        _from_words(_leading_verbs(description), "description", categories)
    _from_params(words, params, categories)
    if not categories and words and words[0] in _WRITE_VERBS:
        categories["write"] = f"name {name!r}: {words[0]}"
    reads = not categories and bool(words) and words[0] in _READ_VERBS
    sensitive = reads and (bool(_SENSITIVE_OBJECTS.intersection(words))
                           or any(pair in _SENSITIVE_PAIRS for pair in zip(words, words[1:], strict=False)))
    return SinkProfile(frozenset(categories), tuple(categories.values()), reads, sensitive)


def _from_words(words: list[str], where: str, out: dict[Category, str]) -> None:
    bag = set(words)
    if bag & _PAYMENT_OBJECTS and (bag & _VERBS.keys() or bag & _CHANGE_VERBS or len(bag) <= 2):
        out.setdefault("payment", f"{where}: {', '.join(sorted(bag & _PAYMENT_OBJECTS))}")
    if bag & _CREDENTIAL_OBJECTS and bag & (_CHANGE_VERBS | {"revoke", "delete", "remove"}):
        out.setdefault("credentials", f"{where}: {', '.join(sorted(bag & _CREDENTIAL_OBJECTS))}")
    if bag & _ACCESS_OBJECTS and bag & _ACCESS_VERBS:
        out.setdefault("access", f"{where}: {', '.join(sorted(bag & (_ACCESS_OBJECTS | _ACCESS_VERBS)))}")
    if words and words[0] in _READ_VERBS and "credentials" not in out:
        return  # get_sent_emails, search_messages: the verb that leads says what the tool does
    for i, word in enumerate(words):
        category = _VERBS.get(word) if i == 0 or word not in _NOUN_TOO else None
        if category is None and i > 0 and words[0] in _CREATE_VERBS:
            category = _OUTBOUND_OBJECTS.get(word)  # create_post, new_message
        if category == "message" and "payment" in out:
            continue  # send_money sends money, not a message
        if category is not None:
            out.setdefault(category, f"{where}: {word}")


def _from_params(words: list[str], params: set[str], out: dict[Category, str]) -> None:
    if words and words[0] in _READ_VERBS:
        return  # search_emails(to=...) filters by recipient; it sends nothing
    if params & _PAYMENT_PARAMS and "amount" in params:
        out.setdefault("payment", f"parameters {', '.join(sorted(params & (_PAYMENT_PARAMS | {'amount'})))}")
    if params & _RECIPIENT_PARAMS and "payment" not in out:
        out.setdefault("message", f"parameter {sorted(params & _RECIPIENT_PARAMS)[0]!r}")
    if params & _ADDRESS_PARAMS and params & _CONTENT_PARAMS:
        out.setdefault("message", f"parameters {sorted(params & _ADDRESS_PARAMS)[0]!r} with content")
    if params & _INVITE_PARAMS:
        out.setdefault("message", f"parameter {sorted(params & _INVITE_PARAMS)[0]!r} (an invitation)")
    if params & _CREDENTIAL_PARAMS:
        out.setdefault("credentials", f"parameter {sorted(params & _CREDENTIAL_PARAMS)[0]!r}")
    if params & _SHARE_PARAMS:
        out.setdefault("share", f"parameter {sorted(params & _SHARE_PARAMS)[0]!r}")


def _leading_verbs(description: str) -> list[str]:
    """The first words of a description with third-person endings removed: "Sends an email" -> send, an, email."""
    words = _DESCRIPTION_WORD.findall(description[:120])[:6]
    return [_base(w) for w in words]


def _base(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("shes", "ches", "sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word
