from __future__ import annotations

import base64
import json

import pytest

from attest.dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, Signature, pae
from attest.errors import BundleFormatError
from tests.attest.vectors import model_bundle


def test_pae_matches_the_dsse_spec_example() -> None:
    # The worked example of the DSSE v1 protocol document.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t\u00e9", b"\x00\xff") == b"DSSEv1 3 t\xc3\xa9 2 \x00\xff"
    assert pae("", b"") == b"DSSEv1 0  0 "


def _dict(body: bytes = b'{"x": 1}', **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "payload": base64.b64encode(body).decode(),
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "signatures": [{"sig": base64.b64encode(b"sig").decode(), "keyid": ""}],
    }
    data.update(changes)
    return data


def test_round_trip() -> None:
    envelope = Envelope.from_json_dict(_dict())
    assert envelope == Envelope(IN_TOTO_PAYLOAD_TYPE, b'{"x": 1}', (Signature(b"sig"),))
    assert envelope.signature == b"sig"
    assert envelope.pae() == pae(IN_TOTO_PAYLOAD_TYPE, b'{"x": 1}')
    assert Envelope.from_json_dict(envelope.to_json_dict()) == envelope
    assert envelope.to_json_dict() == _dict()


def test_keyid_is_optional() -> None:
    assert Envelope.from_json_dict(_dict(signatures=[{"sig": "c2ln"}])).signatures == (Signature(b"sig", ""),)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([], "must be a JSON object"),
        ({"payload": "", "payloadType": "x"}, "lacks signatures"),
        (_dict(extra=1), "unknown fields: extra"),
        (_dict(payloadType=1), "payloadType must be a non-empty string"),
        (_dict(payloadType=""), "payloadType must be a non-empty string"),
        (_dict(payload=5), "payload must be a base64 string"),
        (_dict(payload="e30"), "not valid base64"),  # padding missing
        (_dict(payload="e3 0="), "not valid base64"),
        (_dict(payload="-_8="), "not valid base64"),  # URL-safe alphabet
        (_dict(payload="e31="), "not canonical base64"),  # non-zero trailing bits
        (_dict(signatures={}), "signatures must be a list"),
        (_dict(signatures=[]), "has 0 signatures; exactly one is supported for now"),
        (_dict(signatures=[{"sig": "c2ln"}, {"sig": "c2ln"}]), "has 2 signatures; exactly one is supported"),
        (_dict(signatures=[{"sig": "c2ln", "keyid": 3}]), "keyid must be a string"),
        (_dict(signatures=[{"sig": "c2ln", "other": ""}]), "unknown fields: other"),
        (_dict(signatures=[{"keyid": ""}]), "lacks sig"),
        (_dict(signatures=["c2ln"]), "must be a JSON object"),
    ],
)
def test_malformed_envelopes_are_refused(data: object, reason: str) -> None:
    with pytest.raises(BundleFormatError, match=reason):
        Envelope.from_json_dict(data)


@pytest.mark.parametrize("vector", ["v1.1.0-elliptic-key", "v1.1.0-certificate", "v1.1.0-sigstore"])
def test_vector_envelopes_parse(vector: str) -> None:
    bundle = json.loads(model_bundle(vector))
    envelope = Envelope.from_json_dict(bundle["dsseEnvelope"])
    assert envelope.payload_type == IN_TOTO_PAYLOAD_TYPE
    assert json.loads(envelope.payload)["_type"] == "https://in-toto.io/Statement/v1"
