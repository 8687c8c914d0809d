"""Evidence bundles: written and read back exactly, and every malformed one refused with its reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attest.errors import EvidenceFormatError
from attest.tee.binding import Binding
from attest.tee.evidence import EvidenceBundle, EvidenceItem, read_evidence_bundle

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BINDING = Binding(b"\x07" * 32, "cd" * 32, b"engine-key-der")


def _bundle() -> EvidenceBundle:
    item = EvidenceItem("sev-snp", {"report": b"\x02" + b"\0" * 0x49F, "vcek": b"0\x82der"})
    return EvidenceBundle((item,), "configfs-tsm", captured_at=NOW, nonce=BINDING.nonce, binding=BINDING)


def test_a_bundle_round_trips_byte_for_byte(tmp_path: Path) -> None:
    _bundle().write(tmp_path / "evidence.json")
    again = read_evidence_bundle(tmp_path / "evidence.json")
    assert again == _bundle()
    assert again.items[0].parts["report"] == _bundle().items[0].parts["report"]
    assert again.binding is not None and again.binding.report_data() == BINDING.report_data()


def _document() -> dict:
    return _bundle().to_json()


@pytest.mark.parametrize(("change", "reason"), [
    (lambda d: d.update(kind="something-else"), "not a version 1 modelgate-evidence document"),
    (lambda d: d.update(extra=1), "unknown fields: extra"),
    (lambda d: d.update(items=[]), "holds no evidence"),
    (lambda d: d["items"][0].update(platform="sgx"), "unknown platform 'sgx'"),
    (lambda d: d["items"][0]["parts"].update(report="not base64!"), "parts.report is not valid base64"),
    (lambda d: d["items"][0]["parts"].update(quote="AAAA"), "unknown parts: quote"),
    (lambda d: d["items"][0]["parts"].pop("report"), "sev-snp evidence lacks report"),
    (lambda d: d.update(nonce="XY"), "nonce must be lower-case hex"),
    (lambda d: d.update(captured_at="2026-12-01T12:00:00"), "captured_at must carry a time zone"),
    (lambda d: d["binding"].update(manifest_digest="abc"), "binding: the manifest digest must be a SHA-256"),
])
def test_malformed_bundles_are_refused_with_their_reason(change, reason: str) -> None:
    document = _document()
    change(document)
    with pytest.raises(EvidenceFormatError, match=reason):
        EvidenceBundle.from_json_bytes(json.dumps(document).encode())


def test_duplicate_keys_and_oversize_bundles_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EvidenceFormatError, match="duplicate"):
        EvidenceBundle.from_json_bytes(b'{"kind": "a", "kind": "b"}')
    (tmp_path / "big.json").write_bytes(b" " * (17 << 20))
    with pytest.raises(EvidenceFormatError, match="larger than"):
        read_evidence_bundle(tmp_path / "big.json")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_arbitrary_bytes_parse_or_fail_with_the_evidence_error(data: bytes) -> None:
    try:
        EvidenceBundle.from_json_bytes(data)
    except EvidenceFormatError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_bundles_parse_or_fail_with_the_evidence_error(data: st.DataObject) -> None:
    raw = bytearray(json.dumps(_document()).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        EvidenceBundle.from_json_bytes(bytes(raw))
    except EvidenceFormatError:
        pass
