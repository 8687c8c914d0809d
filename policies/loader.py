"""Reading policy documents from YAML, with paths made absolute against the policy's own folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from policies.errors import PolicyError
from policies.schema import Policy

__all__ = ["load_policy", "shipped_policy", "shipped_policy_path"]

_MAX_POLICY_BYTES = 1 << 20


def load_policy(path: str | Path) -> Policy:
    """Load and validate a policy file; relative paths inside it are resolved against its folder."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"cannot read policy {path}: {exc.strerror or exc}") from exc
    if len(raw) > _MAX_POLICY_BYTES:
        raise PolicyError(f"policy {path} is larger than {_MAX_POLICY_BYTES} bytes")
    try:
        document = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy {path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise PolicyError(f"policy {path} must be a mapping at the top level")
    try:
        policy = Policy.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise PolicyError(f"policy {path} is invalid: {problems}") from exc
    return _resolve_paths(policy, path.parent)


def shipped_policy(name: str) -> Policy:
    """One of the policies that ship with modelgate (``dev`` or ``production``)."""
    return load_policy(shipped_policy_path(name))


def shipped_policy_path(name: str) -> Path:
    """Where a shipped policy file lies, for commands that take a policy file."""
    return Path(__file__).parent / f"{name}.yaml"


def _resolve_paths(policy: Policy, base: Path) -> Policy:
    def resolve(p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else (base / p).resolve()

    trust = policy.trust
    update: dict[str, Any] = {
        "keys": tuple(resolve(k) for k in trust.keys),
        "certificate_roots": tuple(r.model_copy(update={"path": resolve(r.path)}) for r in trust.certificate_roots),
    }
    if trust.sigstore_trust_config is not None:
        update["sigstore_trust_config"] = resolve(trust.sigstore_trust_config)
    return policy.model_copy(update={"trust": trust.model_copy(update=update)})
