"""The TD's confidential-computing event log (ACPI CCEL), and its replay into RTMR0-3.

The quote signs only the RTMRs' final values; the event log says what was measured into them (firmware,
boot loader, kernel, command line). The log is unsigned, so it means something only once its replay
gives exactly the RTMRs of an authentic quote. The log is TCG's crypto-agile format (TCG PC Client
Platform Firmware Profile, 10.2): a SHA-1-format Spec ID event, then TCG_PCR_EVENT2 records, in which
the index is the CC measurement register (0 MRTD, 1-4 RTMR0-3) and RTMR = SHA-384(RTMR || digest).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from attest.errors import EvidenceFormatError, SubjectMismatchError
from attest.tee.tdx.quote import TdQuoteBody

__all__ = ["CcelTable", "Event", "check_replay", "parse_ccel_table", "parse_event_log", "replay"]

_TABLE_SIZE = 56
_CC_TYPE_TDX = 2
_EV_NO_ACTION = 0x3
_SHA384 = 0x000C
_SPEC_ID = b"Spec ID Event03\x00"


@dataclass(frozen=True, slots=True)
class CcelTable:
    """The ACPI CCEL table: which TEE wrote the log, and where its log area is."""

    cc_type: int
    cc_subtype: int
    log_area_minimum_length: int
    log_area_start_address: int


@dataclass(frozen=True, slots=True)
class Event:
    """One measured event: ``mr_index`` 1-4 is RTMR0-3; ``digest`` is its SHA-384 digest."""

    mr_index: int
    event_type: int
    digest: bytes
    data: bytes


def parse_ccel_table(raw: bytes) -> CcelTable:
    """The CCEL table (ACPI 6.5, 5.2.34); EvidenceFormatError unless it is a TDX one with a valid checksum."""
    if len(raw) < _TABLE_SIZE or raw[:4] != b"CCEL":
        raise EvidenceFormatError("the CCEL table must start with the signature CCEL and be 56 bytes long")
    (length,) = struct.unpack_from("<I", raw, 4)
    if length != len(raw):
        raise EvidenceFormatError(f"the CCEL table declares {length} bytes but is {len(raw)}")
    if sum(raw) % 256:
        raise EvidenceFormatError("the CCEL table's checksum does not add up to zero")
    if raw[36] != _CC_TYPE_TDX:
        raise EvidenceFormatError(f"the CCEL table is for CC type {raw[36]}, not TDX (2)")
    minimum, start = struct.unpack_from("<QQ", raw, 40)
    return CcelTable(raw[36], raw[37], minimum, start)


def parse_event_log(raw: bytes, table: CcelTable) -> tuple[Event, ...]:
    """The events of the log area ``raw``; what follows the last event must be erased (0xFF) or zero."""
    if len(raw) > table.log_area_minimum_length:
        raise EvidenceFormatError(
            f"the event log is {len(raw)} bytes, more than the CCEL table's log area ({table.log_area_minimum_length})"
        )
    offset, sizes = _spec_id(raw)
    events: list[Event] = []
    while offset + 8 <= len(raw) and raw[offset : offset + 8] not in (b"\xff" * 8, bytes(8)):
        event, offset = _event(raw, offset, sizes)
        events.append(event)
    rest = raw[offset:]
    if rest.strip(b"\xff") and rest.strip(b"\x00"):
        raise EvidenceFormatError(f"the event log has {len(rest)} bytes after event {len(events)} that are no event")
    return tuple(events)


def replay(events: tuple[Event, ...]) -> tuple[bytes, bytes, bytes, bytes]:
    """RTMR0-3 as the events extend them from zero (EV_NO_ACTION events and MRTD records extend nothing)."""
    rtmrs = [bytes(48)] * 4
    for event in events:
        if event.event_type != _EV_NO_ACTION and event.mr_index:
            rtmrs[event.mr_index - 1] = hashlib.sha384(rtmrs[event.mr_index - 1] + event.digest).digest()
    return rtmrs[0], rtmrs[1], rtmrs[2], rtmrs[3]


def check_replay(events: tuple[Event, ...], body: TdQuoteBody) -> None:
    """SubjectMismatchError naming the first RTMR that the log does not replay to (the quote must be verified)."""
    for index, (replayed, quoted) in enumerate(zip(replay(events), body.rtmrs, strict=True)):
        if replayed != quoted:
            raise SubjectMismatchError(
                f"RTMR{index}", f"the event log replays to {replayed.hex()}, the quote signed {quoted.hex()}"
            )


def _spec_id(raw: bytes) -> tuple[int, dict[int, int]]:
    """Past the SHA-1-format first event; the digest size of each algorithm the log uses."""
    if len(raw) < 32:
        raise EvidenceFormatError("the event log is truncated in its first event")
    mr_index, event_type = struct.unpack_from("<II", raw, 0)
    (size,) = struct.unpack_from("<I", raw, 28)
    data = raw[32 : 32 + size]
    # TCG writes the Spec ID event for PCR 0; TDX firmware maps that PCR to MR index 1 like any other.
    if (
        mr_index not in (0, 1)
        or event_type != _EV_NO_ACTION
        or len(data) < 29
        or data[:16] != _SPEC_ID
        or size != len(data)
    ):
        raise EvidenceFormatError("the event log does not start with a TCG Spec ID Event03 (crypto-agile format)")
    (count,) = struct.unpack_from("<I", data, 24)
    if not 0 < count <= 8 or len(data) < 28 + 4 * count + 1:
        raise EvidenceFormatError(f"the Spec ID event lists {count} algorithms, or is truncated")
    sizes = dict(struct.unpack_from("<HH", data, 28 + 4 * i) for i in range(count))
    if sizes.get(_SHA384) != 48:
        raise EvidenceFormatError("the event log does not record SHA-384 digests, which RTMRs extend")
    vendor = data[28 + 4 * count]
    if 28 + 4 * count + 1 + vendor != size:
        raise EvidenceFormatError("the Spec ID event's size does not match its contents")
    return 32 + size, sizes


def _event(raw: bytes, offset: int, sizes: dict[int, int]) -> tuple[Event, int]:
    def take(size: int, field: str) -> bytes:
        nonlocal offset
        if size > len(raw) - offset:
            raise EvidenceFormatError(f"the event log is truncated: {field} needs {size} bytes at offset {offset}")
        offset += size
        return raw[offset - size : offset]

    start = offset
    mr_index, event_type, count = struct.unpack("<III", take(12, "an event header"))
    if mr_index > 4:
        raise EvidenceFormatError(f"the event at offset {start} names measurement register {mr_index} (only 0-4)")
    if count > len(sizes):
        raise EvidenceFormatError(f"the event at offset {start} carries {count} digests, the log declares {len(sizes)}")
    digests: dict[int, bytes] = {}
    for _ in range(count):
        (algorithm,) = struct.unpack("<H", take(2, "a digest algorithm"))
        if algorithm not in sizes or algorithm in digests:
            raise EvidenceFormatError(
                f"the event at offset {start} has an undeclared or repeated digest {algorithm:#x}"
            )
        digests[algorithm] = take(sizes[algorithm], "a digest")
    (size,) = struct.unpack("<I", take(4, "an event size"))
    data = take(size, "the event data")
    if _SHA384 not in digests:
        raise EvidenceFormatError(f"the event at offset {start} has no SHA-384 digest")
    return Event(mr_index, event_type, digests[_SHA384], data), offset
