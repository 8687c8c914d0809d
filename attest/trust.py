"""Trust anchors: the keys, certificate roots and keyless identities a verification may accept.

Anchors come from the policy and from the command line, and the command line only ever adds: it can
widen trust for one run, never silently drop what the policy requires. Files are read once, here, so a
missing or malformed anchor is an input error (exit 2) naming the file, never a verification failure.
An empty set of anchors is legal to build but trusts no one: every verification against it fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cryptography import x509

from attest.certs import UNREADABLE
from attest.errors import AttestError, IdentityError
from attest.keys import PublicKey, as_public_key, key_id, load_public_key, read_pem_file
from policies.schema import KeylessIdentity, TrustSection

__all__ = ["RootAnchor", "TrustAnchors", "load_certificates"]

_NOTHING_TRUSTED = "no trusted keys, certificate roots or keyless identities are configured"


class RootAnchor(NamedTuple):
    """A CA trusted to issue signing certificates; a plain ``(certificate, identities)`` pair works too."""

    certificate: x509.Certificate

    identities: tuple[str, ...] = ()
    """If not empty, the signing certificate must name one of these (SAN email, URI, DNS or the CN)."""


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """Everything a bundle's signer may chain to; ``from_policy`` builds it from a policy and flags.

    Built directly, entries are checked and normalised: keys must be supported public keys, roots
    become ``RootAnchor`` and ``(identity, issuer)`` pairs become ``KeylessIdentity``.
    """

    keys: tuple[PublicKey, ...] = ()
    roots: tuple[tuple[x509.Certificate, tuple[str, ...]], ...] = ()
    keyless: tuple[KeylessIdentity, ...] = ()

    sigstore_trust_config: Path | None = None
    """Client trust config for keyless bundles; None means the public-good instance sigstore-python embeds."""

    def __post_init__(self) -> None:
        roots = tuple(RootAnchor(cert, tuple(identities)) for cert, identities in self.roots)
        for (cert, _), (_, given) in zip(roots, self.roots, strict=True):
            if not isinstance(cert, x509.Certificate) or isinstance(given, str):
                raise AttestError("certificate roots must be (certificate, tuple of identities) pairs")
        keyless = tuple(
            k if isinstance(k, KeylessIdentity) else KeylessIdentity(identity=k[0], issuer=k[1])  # type: ignore[index]
            for k in self.keyless
        )
        object.__setattr__(self, "keys", tuple(as_public_key(k) for k in self.keys))
        object.__setattr__(self, "roots", roots)
        object.__setattr__(self, "keyless", keyless)

    @property
    def is_empty(self) -> bool:
        return not (self.keys or self.roots or self.keyless)

    def check_not_empty(self) -> None:
        """Fail closed: with nothing trusted, no bundle may verify, whatever it carries."""
        if self.is_empty:
            raise IdentityError(_NOTHING_TRUSTED)

    @classmethod
    def from_policy(
        cls,
        trust: TrustSection,
        *,
        keys: Sequence[Path] = (),
        roots: Sequence[Path] = (),
        root_identities: Sequence[str] = (),
        keyless: Sequence[KeylessIdentity] = (),
        sigstore_trust_config: Path | None = None,
    ) -> TrustAnchors:
        """The policy's anchors plus the command line's; ``root_identities`` apply to ``roots`` only."""
        public_keys: dict[str, PublicKey] = {}
        for path in (*trust.keys, *keys):
            key = load_public_key(path)
            public_keys.setdefault(key_id(key), key)
        anchors = [
            RootAnchor(cert, root.identities)
            for root in trust.certificate_roots
            for cert in load_certificates(root.path)
        ]
        anchors += [RootAnchor(cert, tuple(root_identities)) for path in roots for cert in load_certificates(path)]
        config = sigstore_trust_config or trust.sigstore_trust_config
        if config is not None and not config.is_file():
            raise AttestError(f"sigstore trust config {config} is not a readable file")
        return cls(
            keys=tuple(public_keys.values()),
            roots=tuple(anchors),
            keyless=tuple(dict.fromkeys((*trust.keyless, *keyless))),
            sigstore_trust_config=config,
        )

    @classmethod
    def from_flags(
        cls,
        trust: TrustSection,
        *,
        keys: Sequence[Path],
        ca: Sequence[Path],
        identity: Sequence[str],
        issuer: str | None,
        trust_config: Path | None,
    ) -> TrustAnchors:
        """The command line's ``--key/--ca/--identity/--issuer/--trust-config`` added to a policy's trust.

        ``--identity`` names keyless signers when ``--issuer`` is given, and otherwise restricts ``--ca``.
        """
        if issuer is not None and not identity:
            raise AttestError("--issuer needs --identity (the keyless signer's certificate identity)")
        return cls.from_policy(
            trust,
            keys=tuple(keys),
            roots=tuple(ca),
            root_identities=tuple(identity) if ca and issuer is None else (),
            keyless=tuple(KeylessIdentity(identity=i, issuer=issuer) for i in identity) if issuer else (),
            sigstore_trust_config=trust_config,
        )


def load_certificates(path: Path) -> tuple[x509.Certificate, ...]:
    """Every certificate in a PEM file; a key given where a certificate belongs gets its own message."""
    data = read_pem_file(Path(path))
    if b"-----BEGIN CERTIFICATE-----" not in data:
        if b"KEY-----" in data:
            raise AttestError(f"{path} holds a key, not a certificate; give the CA's certificate (or use --key)")
        raise AttestError(f"{path} is not a PEM certificate file")
    try:
        return tuple(x509.load_pem_x509_certificates(data))
    except UNREADABLE as exc:
        raise AttestError(f"{path}: malformed PEM certificate: {exc}") from None
