"""Server-sent events, decoded incrementally with the exact bytes of each event kept, and encoded.

A guard must forward what it allows byte for byte, so the decoder does not just yield events: it
yields ``Frame``s, the raw bytes up to and including the blank line that ended an event, paired with
the event they dispatch. Concatenating every frame gives back the input exactly, however the input was
split into chunks. Parsing follows the WHATWG rules (CRLF, LF or CR line ends; ``data`` lines joined by
newlines; comments; ``event``, ``id`` and ``retry``; a leading BOM ignored) with two choices of our own:

- a line that is not UTF-8 is an error, not replaced: clients' decoders (the OpenAI SDK's) raise on it,
  and a guard that replaced bytes would read a different event than the client;
- at the end of the stream an unterminated event is still handed over (``complete=False``), although a
  conforming client discards it: a guard must see at least everything any client might act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.errors import SSEError

__all__ = ["Frame", "SSEDecoder", "SSEEvent", "encode_comment", "encode_event"]

_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None
    """This event's own ``id`` field, when it had one."""
    retry: int | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    raw: bytes
    """The bytes as received, up to and including the blank line that ended the event."""
    event: SSEEvent | None
    """None for a block that dispatches nothing (comments, keep-alive newlines, fields without data)."""
    complete: bool = True
    """False only for the unterminated remainder that ``SSEDecoder.close`` returns."""


class SSEDecoder:
    """Feed bytes in chunks of any size; get the frames they complete."""

    def __init__(self, *, max_event_bytes: int = 4 * 2**20) -> None:
        self.max_event_bytes = max_event_bytes
        self._buf = bytearray()
        self._pos = 0  # where the first unparsed line starts in _buf
        self._first_line = True
        self._reset()

    def _reset(self) -> None:
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[Frame]:
        self._buf += chunk
        frames = self._frames(final=False)
        if len(self._buf) > self.max_event_bytes:
            raise SSEError(f"server-sent event larger than {self.max_event_bytes} bytes")
        return frames

    def close(self) -> list[Frame]:
        """The frames still buffered at the end of the stream, the last possibly unterminated."""
        frames = self._frames(final=True)
        if self._pos < len(self._buf):
            self._line(bytes(self._buf[self._pos:]))
        if self._buf:
            frames.append(Frame(bytes(self._buf), self._dispatch(), complete=False))
        self._buf.clear()
        self._pos = 0
        return frames

    def _frames(self, *, final: bool) -> list[Frame]:
        frames: list[Frame] = []
        start = 0
        while match := _LINE_END.search(self._buf, self._pos):
            if match.group() == b"\r" and match.end() == len(self._buf) and not final:
                break  # a CR that a LF in the next chunk may complete into one CRLF
            line, self._pos = bytes(self._buf[self._pos:match.start()]), match.end()
            if self._line(line):
                continue
            if self._pos - start > self.max_event_bytes:
                raise SSEError(f"server-sent event larger than {self.max_event_bytes} bytes")
            frames.append(Frame(bytes(self._buf[start:self._pos]), self._dispatch()))
            start = self._pos
        del self._buf[:start]
        self._pos -= start
        return frames

    def _line(self, raw: bytes) -> bool:
        """Apply one line's field; False for the blank line that ends an event."""
        if self._first_line:
            self._first_line = False
            raw = raw.removeprefix(_BOM)
        if not raw:
            return False
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SSEError(f"server-sent event line is not UTF-8 (byte {exc.start})") from None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return True  # comments (an empty field name) and unknown fields are ignored

    def _dispatch(self) -> SSEEvent | None:
        event = None
        if self._data:
            event = SSEEvent("\n".join(self._data), self._event or "message", self._id, self._retry)
        self._reset()
        return event


def encode_event(data: str, *, event: str | None = None, id: str | None = None) -> bytes:
    """One event; ``data`` may span lines (each becomes a ``data:`` line)."""
    fields = []
    for name, value in (("event", event), ("id", id)):
        if value is not None:
            if re.search(r"[\r\n\0]", value):
                raise ValueError(f"an SSE {name} field cannot contain line breaks or NUL")
            fields.append(f"{name}: {value}\n")
    fields.extend(f"data: {line}\n" for line in re.split(r"\r\n|\r|\n", data))
    return ("".join(fields) + "\n").encode("utf-8")


def encode_comment(text: str = "") -> bytes:
    return "".join(f": {line}\n" for line in re.split(r"\r\n|\r|\n", text)).encode("utf-8") + b"\n"
