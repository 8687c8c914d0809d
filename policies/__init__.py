"""Policy documents: the single statement of what a modelgate deployment trusts.

    >>> from policies import shipped_policy
    >>> shipped_policy("production").trust.require_sbom
    True
"""

from policies.detection import DetectionSection
from policies.errors import ModelgateError, PolicyError
from policies.gateway import AuditSection, GatewayProfile, GatewaySection
from policies.loader import load_policy, shipped_policy
from policies.schema import CertificateRoot, KeylessIdentity, Policy, TrustSection, WeightFormat

__all__ = [
    "AuditSection",
    "CertificateRoot",
    "DetectionSection",
    "GatewayProfile",
    "GatewaySection",
    "KeylessIdentity",
    "ModelgateError",
    "Policy",
    "PolicyError",
    "TrustSection",
    "WeightFormat",
    "load_policy",
    "shipped_policy",
]
