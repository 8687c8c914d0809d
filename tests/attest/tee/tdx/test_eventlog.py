from __future__ import annotations

import struct
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.errors import EvidenceFormatError, SubjectMismatchError
from attest.tee.tdx.eventlog import check_replay, parse_ccel_table, parse_event_log, replay
from attest.tee.tdx.quote import parse_quote
from tests.attest.tee.tdx.vectors import CCEL, flip, mutations, tdx_vector

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ccel(name: str) -> bytes:
    return tdx_vector("go-tdx-guest", "ccel", name)


def test_the_log_replays_to_the_quotes_rtmrs() -> None:
    table = parse_ccel_table(_ccel("ccel_table.dat"))
    assert (table.cc_type, table.log_area_minimum_length) == (2, 262144)
    events = parse_event_log(_ccel("ccel_data.dat"), table)
    assert len(events) == 43
    assert sum(e.mr_index == 3 and e.event_type == 0xD for e in events) == 20  # EV_IPL: GRUB's commands into RTMR2
    quote = parse_quote(tdx_vector(*CCEL))
    assert replay(events) == quote.body.rtmrs
    assert quote.body.rtmrs[3] == bytes(48)  # nothing was measured into RTMR3
    check_replay(events, quote.body)


def test_a_changed_event_does_not_replay() -> None:
    table = parse_ccel_table(_ccel("ccel_table.dat"))
    events = parse_event_log(_ccel("ccel_data.dat"), table)
    body = parse_quote(tdx_vector(*CCEL)).body
    kernel = next(i for i, e in enumerate(events) if e.mr_index == 2 and e.event_type != 3)
    changed = (*events[:kernel], replace(events[kernel], digest=flip(events[kernel].digest, 0)), *events[kernel + 1 :])
    with pytest.raises(
        SubjectMismatchError, match=f"RTMR1: the event log replays to .*, the quote signed {body.rtmrs[1].hex()}"
    ):
        check_replay(changed, body)
    with pytest.raises(SubjectMismatchError, match=f"RTMR{events[-1].mr_index - 1}: "):
        check_replay(events[:-1], body)


def test_the_table_is_checked() -> None:
    raw = _ccel("ccel_table.dat")
    with pytest.raises(EvidenceFormatError, match="checksum does not add up to zero"):
        parse_ccel_table(flip(raw, 45))
    with pytest.raises(EvidenceFormatError, match="signature CCEL"):
        parse_ccel_table(b"XCEL" + raw[4:])
    with pytest.raises(EvidenceFormatError, match="declares 56 bytes but is 57"):
        parse_ccel_table(raw + b"\x00")
    with pytest.raises(EvidenceFormatError, match="CC type 1, not TDX"):
        parse_ccel_table(raw[:36] + b"\x01" + raw[37:45] + bytes([raw[45] + 1]) + raw[46:])


def test_the_log_is_read_strictly() -> None:
    table = parse_ccel_table(_ccel("ccel_table.dat"))
    log = _ccel("ccel_data.dat")
    end = len(log.rstrip(b"\xff"))
    with pytest.raises(EvidenceFormatError, match="more than the CCEL table's log area"):
        parse_event_log(log + b"\xff", table)
    with pytest.raises(EvidenceFormatError, match="does not start with a TCG Spec ID Event03"):
        parse_event_log(log[:32] + b"Spec ID Event02" + log[47:], table)
    with pytest.raises(EvidenceFormatError, match="the event log is truncated: the event data needs"):
        parse_event_log(log[: end - 10], table)
    with pytest.raises(EvidenceFormatError, match="bytes after event 43 that are no event"):
        parse_event_log(log[:end] + b"\xff" * 9 + b"\x01" + log[end + 10 :], table)
    first = 32 + struct.unpack_from("<I", log, 28)[0]
    with pytest.raises(EvidenceFormatError, match="names measurement register 5"):
        parse_event_log(log[:first] + struct.pack("<I", 5) + log[first + 4 :], table)
    with pytest.raises(EvidenceFormatError, match="undeclared or repeated digest 0xb"):
        parse_event_log(log[: first + 12] + struct.pack("<H", 0xB) + log[first + 14 :], table)


@FUZZ
@given(st.data())
def test_mutated_logs_give_events_or_a_format_error(data: st.DataObject) -> None:
    table = parse_ccel_table(_ccel("ccel_table.dat"))
    log = _ccel("ccel_data.dat")
    valid = log[: len(log.rstrip(b"\xff")) + 16]
    try:
        parse_event_log(data.draw(mutations(valid)), table)
    except EvidenceFormatError:
        pass
