"""The policy document: what a deployment trusts and requires.

Every field has a default that is safe on its own: an empty trust section trusts nobody, an SBOM is
required and only safetensors and GGUF weights are allowed. Sections are added by later features
(attestation, gateway, detection); each is a frozen model so that a policy cannot change after it is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from policies.attestation import AttestationSection
from policies.detection import DetectionSection
from policies.gateway import GatewaySection

__all__ = ["KeylessIdentity", "Policy", "TrustSection", "WeightFormat"]

WeightFormat = Literal["safetensors", "gguf"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KeylessIdentity(_Strict):
    """A Sigstore keyless signer: the certificate's identity and the OIDC issuer that vouched for it."""

    identity: str = Field(min_length=1)
    """The subject alternative name Fulcio put in the certificate (an email or a workload URI)."""

    issuer: str = Field(min_length=1)
    """The OIDC issuer URL recorded in the certificate."""


class CertificateRoot(_Strict):
    """A private CA whose certificates may sign models."""

    path: Path
    """PEM file holding the root certificate (relative paths are relative to the policy file)."""

    identities: tuple[str, ...] = ()
    """If not empty, the signing certificate must name one of these (SAN email, URI, DNS or the CN)."""


class TrustSection(_Strict):
    """Who may sign model artifacts, and what a signed artifact must look like."""

    keys: tuple[Path, ...] = ()
    """PEM public keys (ECDSA P-256/P-384 or Ed25519) trusted to sign models."""

    certificate_roots: tuple[CertificateRoot, ...] = ()
    """Certificate authorities trusted to issue signing certificates."""

    keyless: tuple[KeylessIdentity, ...] = ()
    """Sigstore keyless signers (Fulcio certificate plus Rekor entry)."""

    sigstore_trust_config: Path | None = None
    """Sigstore client trust config (trusted root) for keyless bundles; unset means the public-good instance."""

    allowed_weight_formats: tuple[WeightFormat, ...] = ("safetensors", "gguf")
    """Weight formats that may be loaded. Code-carrying formats (pickle and friends) are never allowed."""

    require_sbom: bool = True
    """Whether the signed statement must carry a CycloneDX ML-BOM as its predicate."""


class Policy(_Strict):
    """A policy document as written in `policies/*.yaml`."""

    version: Literal[1] = 1
    """Schema version of the document."""

    name: str = "unnamed"
    """A label that appears in every verification result and audit record."""

    trust: TrustSection = TrustSection()
    """Model provenance: signers, SBOM and weight-format requirements."""

    attestation: AttestationSection = AttestationSection()
    """The confidential-computing evidence that a model load needs (a confidential VM by default)."""

    gateway: GatewaySection = GatewaySection()
    """What agents may reach through the gateway, and how it is audited (nothing is allowed by default)."""

    detection: DetectionSection = DetectionSection()
    """What the local detectors' findings do (high severity blocks, medium alerts, by default)."""
