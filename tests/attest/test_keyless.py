from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attest.bundle import KeylessSigner, verify_bundle
from attest.dsse import IN_TOTO_PAYLOAD_TYPE
from attest.errors import (
    AttestError,
    BundleFormatError,
    CertificateError,
    IdentityError,
    SignatureError,
    VerificationError,
)
from attest.keyless import load_trust_config
from attest.keys import generate_private_key
from attest.trust import TrustAnchors
from policies.schema import KeylessIdentity
from tests.attest.vectors import model_bundle, signing_vector

IDENTITY = KeylessIdentity(identity="stefanb@us.ibm.com", issuer="https://sigstore.verify.ibm.com/oauth2")
LOGGED_AT = datetime.fromtimestamp(1760062340, tz=UTC)  # the vector's Rekor integrated time


def _anchors(*keyless: KeylessIdentity, config: Path | None = None) -> TrustAnchors:
    config = config or signing_vector("sigstore-prod-trust-config.json")
    return TrustAnchors(keyless=keyless, sigstore_trust_config=config)


def _vector() -> bytes:
    return model_bundle("v1.1.0-sigstore")


def test_vector_verifies_offline_at_the_log_time() -> None:
    verified = verify_bundle(_vector(), _anchors(IDENTITY))
    assert verified.payload_type == IN_TOTO_PAYLOAD_TYPE
    assert json.loads(verified.payload)["subject"][0]["name"] == "v1.1.0-sigstore"
    signer = verified.signer
    assert (signer.kind, signer.identity, signer.issuer) == ("keyless", (IDENTITY.identity,), IDENTITY.issuer)
    assert (signer.time, signer.time_source) == (LOGGED_AT, "transparency-log")
    # The short-lived certificate expired long before 2040; the log's time is what counts, not the caller's.
    later = verify_bundle(_vector(), _anchors(IDENTITY), at=datetime(2040, 1, 1, tzinfo=UTC)).signer
    assert (later.time, later.time_source) == (LOGGED_AT, "transparency-log")


def test_without_a_log_time_the_callers_time_is_reported() -> None:
    # sigstore then relies on the bundle's RFC 3161 timestamp, whose time its public API does not expose.
    bundle = json.loads(_vector())
    del bundle["verificationMaterial"]["tlogEntries"][0]["integratedTime"]
    at = datetime(2030, 1, 1, tzinfo=UTC)
    signer = verify_bundle(json.dumps(bundle).encode(), _anchors(IDENTITY), at=at).signer
    assert (signer.time, signer.time_source) == (at, "given")


def test_an_unsigned_log_time_is_never_reported() -> None:
    # Without its inclusion promise nothing signs the integrated time, so a forged one must not be reported.
    # (The bundle still verifies: sigstore falls back on its RFC 3161 timestamp.)
    bundle = json.loads(_vector())
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"], entry["inclusionPromise"] = "1900000000", None
    at = datetime(2030, 1, 1, tzinfo=UTC)
    signer = verify_bundle(json.dumps(bundle).encode(), _anchors(IDENTITY), at=at).signer
    assert (signer.time, signer.time_source) == (at, "given")


def test_the_matching_identity_is_reported() -> None:
    other = KeylessIdentity(identity="someone@example.com", issuer=IDENTITY.issuer)
    assert verify_bundle(_vector(), _anchors(other, IDENTITY)).signer.identity == (IDENTITY.identity,)


@pytest.mark.parametrize(
    ("anchor", "reason"),
    [
        (
            KeylessIdentity(identity="mallory@us.ibm.com", issuer=IDENTITY.issuer),
            "SANs do not match mallory@us.ibm.com",
        ),
        (
            KeylessIdentity(identity=IDENTITY.identity, issuer="https://accounts.google.com"),
            "OIDCIssuer does not match .got .https://sigstore.verify.ibm.com/oauth2.",
        ),
    ],
)
def test_wrong_identity_or_issuer(anchor: KeylessIdentity, reason: str) -> None:
    with pytest.raises(IdentityError, match=f"the keyless signer is not trusted: .*{reason}"):
        verify_bundle(_vector(), _anchors(anchor))


def test_keyless_bundle_needs_keyless_anchors() -> None:
    anchors = TrustAnchors(keys=(generate_private_key("ed25519").public_key(),))
    with pytest.raises(IdentityError, match="signed keyless .Sigstore., but no keyless identities are configured"):
        verify_bundle(_vector(), anchors)


def _tampered(edit: str) -> bytes:
    bundle: dict[str, Any] = json.loads(_vector())
    if edit == "payload":
        statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        statement["subject"][0]["name"] = "something-else"
        bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    elif edit == "signature":
        signature = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
        signature[-1] ^= 1
        bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(signature)).decode()
    else:
        raw = bytearray(base64.b64decode(bundle["verificationMaterial"]["certificate"]["rawBytes"]))
        raw[-1] ^= 1
        bundle["verificationMaterial"]["certificate"]["rawBytes"] = base64.b64encode(bytes(raw)).decode()
    return json.dumps(bundle).encode()


@pytest.mark.parametrize(
    ("edit", "error", "reason"),
    [
        ("payload", SignatureError, "keyless verification failed"),
        ("signature", SignatureError, "keyless verification failed"),
        ("certificate", CertificateError, "keyless verification failed: failed to build"),
    ],
)
def test_tampered_keyless_bundles(edit: str, error: type[Exception], reason: str) -> None:
    with pytest.raises(error, match=reason):
        verify_bundle(_tampered(edit), _anchors(IDENTITY))


def _leaves(node: object, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    else:
        yield path


def _flip_a_bit(value: object, position: int) -> object:
    try:
        raw = bytearray(base64.b64decode(str(value), validate=True))
    except ValueError:
        return value
    if raw:
        raw[position % len(raw)] ^= 1 << (position % 8)
    return base64.b64encode(bytes(raw)).decode()


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_structurally_mutated_keyless_bundles(data: st.DataObject) -> None:
    # Every field of the real bundle, set to a wrong type or with a bit flipped inside its base64: sigstore's
    # own exceptions must come out as typed errors, and anything that still verifies must say the same thing.
    # (Without its integrated time the bundle still verifies through its TSA timestamp; the time reported
    # is then the clock's, and says so.)
    original = _vector()
    expected = verify_bundle(original, _anchors(IDENTITY))
    bundle = json.loads(original)
    *parents, last = data.draw(st.sampled_from(list(_leaves(bundle))))
    target = bundle
    for key in parents:
        target = target[key]
    junk = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6), st.just([]), st.just({}))
    position = data.draw(st.integers(min_value=0, max_value=1 << 16))
    target[last] = data.draw(st.one_of(junk, st.just(_flip_a_bit(target[last], position))))
    try:
        verified = verify_bundle(json.dumps(bundle).encode(), _anchors(IDENTITY))
    except VerificationError:
        return
    assert verified.payload == expected.payload
    signer, wanted = verified.signer, expected.signer
    assert (signer.identity, signer.issuer, signer.key_id) == (wanted.identity, wanted.issuer, wanted.key_id)
    assert signer.time == LOGGED_AT if signer.time_source == "transparency-log" else signer.time_source == "clock"


def test_sigstore_parse_errors_are_format_errors() -> None:
    bundle = json.loads(_vector())
    bundle["verificationMaterial"]["tlogEntries"][0]["kindVersion"] = 5
    with pytest.raises(BundleFormatError, match="sigstore-python cannot read the bundle"):
        verify_bundle(json.dumps(bundle).encode(), _anchors(IDENTITY))


def test_embedded_public_good_root_works_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # sigstore-python copies its embedded root into the user cache; keep that out of the real home.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    _vector()  # skip early when the vectors are absent
    signer = verify_bundle(_vector(), TrustAnchors(keyless=(IDENTITY,))).signer
    assert signer.time == LOGGED_AT


def test_unusable_trust_config(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"mediaType": "nope"}')
    with pytest.raises(AttestError, match="is not a Sigstore client trust config"):
        load_trust_config(tmp_path / "bad.json")
    with pytest.raises(AttestError, match="cannot read sigstore trust config"):
        load_trust_config(tmp_path / "missing.json")


# -- signing: no network is reachable from tests, so only the failure paths run here ---------------------

_KEY = "k" * 32  # HS256 wants 32 bytes; the token is never checked by anything here


def _token(**claims: object) -> str:
    now = int(time.time())
    return jwt.encode({"aud": "sigstore", "sub": "me", "iss": "https://issuer.example", "iat": now,
                       "exp": now + 600, **claims}, _KEY, algorithm="HS256")


STATEMENT = json.dumps({
    "_type": "https://in-toto.io/Statement/v1",
    "subject": [{"name": "model", "digest": {"sha256": "00" * 32}}],
    "predicateType": "https://example.com/p",
    "predicate": {},
}).encode()


@pytest.fixture()
def local_services(tmp_path: Path) -> Iterator[tuple[Path, socket.socket]]:
    """A trust config whose Fulcio, Rekor and TSA are a local socket that accepts and never answers."""
    config = json.loads(signing_vector("sigstore-prod-trust-config.json").read_text())
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        for service in ("caUrls", "oidcUrls", "rekorTlogUrls", "tsaUrls"):
            for entry in config["signingConfig"][service]:
                entry["url"] = f"http://127.0.0.1:{server.getsockname()[1]}"
        (tmp_path / "local.json").write_text(json.dumps(config))
        yield tmp_path / "local.json", server


def test_signing_gives_up_at_the_deadline(local_services: tuple[Path, socket.socket]) -> None:
    config, _ = local_services
    signer = KeylessSigner(_token(), config, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(AttestError, match="did not finish within 0.5 s; are Fulcio and Rekor reachable"):
        signer.sign(IN_TOTO_PAYLOAD_TYPE, STATEMENT)
    assert time.monotonic() - started < 5


def test_signing_reports_network_errors(local_services: tuple[Path, socket.socket]) -> None:
    config, server = local_services
    server.close()  # now nothing listens: connections are refused at once
    with pytest.raises(AttestError, match="keyless signing failed: ConnectionError"):
        KeylessSigner(_token(), config).sign(IN_TOTO_PAYLOAD_TYPE, STATEMENT)


def test_signer_input_errors(local_services: tuple[Path, socket.socket]) -> None:
    config, _ = local_services
    with pytest.raises(AttestError, match="the OIDC identity token cannot be used"):
        KeylessSigner("not-a-jwt", config)
    with pytest.raises(AttestError, match="the OIDC identity token cannot be used"):
        KeylessSigner(_token(exp=int(time.time()) - 60), config)
    signer = KeylessSigner(_token(), config)
    with pytest.raises(AttestError, match="only signs in-toto statements, not 'application/json'"):
        signer.sign("application/json", STATEMENT)
    with pytest.raises(AttestError, match="sigstore-python refuses the statement"):
        signer.sign(IN_TOTO_PAYLOAD_TYPE, b'{"not": "a statement"}')
