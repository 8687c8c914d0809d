"""TCB evaluation of a TDX platform, its TDX module and its quoting enclave, as Intel's PCS documents it.

The platform level is the first level of the TCB info whose SGX components and PCESVN the PCK
certificate meets and whose TDX components the quote's TEE_TCB_SVN meets. TEE_TCB_SVN[1] is the TDX
module's major version: when it is not 0, components 0 and 1 (the module's SVN and version) are judged
by the module identity ``TDX_<version>`` instead, and the two statuses are converged the way Intel's
quote verification library does. The quoting enclave is matched against its identity, then its
ISVSVN against that identity's levels. No matching level is its own verdict: Intel does not support
that TCB, so no status is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.errors import IdentityError, PolicyViolation
from attest.tee.tdx.collateral import IsvLevel, ModuleIdentity, QeIdentity, TcbInfo, TcbLevel
from attest.tee.tdx.pck import PckExtensions
from attest.tee.tdx.quote import QeReport, TdQuoteBody

__all__ = ["TcbVerdict", "converge", "evaluate_tcb", "qe_level"]


@dataclass(frozen=True, slots=True)
class TcbVerdict:
    """The platform's TCB level, its TDX module's level and the status the two converge to."""

    level: TcbLevel
    module: IsvLevel | None
    """The level in the module identity ``module_id``; None for module version 0, which the level judges."""
    module_id: str | None
    module_status: str
    status: str


def evaluate_tcb(info: TcbInfo, pck: PckExtensions, body: TdQuoteBody) -> TcbVerdict:
    """The TCB verdict of the platform and its TDX module.

    PolicyViolation when the TCB info is not this platform's or no level matches; IdentityError when
    the TDX module is not the one the TCB info describes.
    """
    _check_fmspc(info, pck)
    identity = _match_module(info, body)
    level = _platform_level(info, pck, body)
    if identity is None:  # module version 0: its SVN is one of the level's TDX components
        return TcbVerdict(level, None, None, "UpToDate", level.status)
    module = _module_level(identity, body)
    return TcbVerdict(level, module, identity.id, module.status, converge(level.status, module.status))


def _check_fmspc(info: TcbInfo, pck: PckExtensions) -> None:
    """PolicyViolation unless the TCB info is the one for this platform (its FMSPC and PCE-ID)."""
    if info.fmspc != pck.fmspc:
        raise PolicyViolation(
            f"the TCB info is for FMSPC {info.fmspc.hex()}, the PCK certificate's is {pck.fmspc.hex()}: "
            "it does not judge this platform"
        )
    if info.pce_id != pck.pce_id:
        raise PolicyViolation(
            f"the TCB info is for PCE-ID {info.pce_id.hex()}, the PCK certificate's is {pck.pce_id.hex()}"
        )


def _match_module(info: TcbInfo, body: TdQuoteBody) -> ModuleIdentity | None:
    """The module identity that judges the quote's TDX module (None for version 0, judged by ``tdxModule``).

    IdentityError when the module was not signed by the TCB info's signer or its SEAM attributes differ
    under the mask; PolicyViolation when the TCB info has no identity for the module's version.
    """
    version = body.tee_tcb_svn[1]
    signer, identity = info.tdx_module, None
    if version:
        wanted = f"TDX_{version:02X}"
        identity = next((m for m in info.module_identities if m.id.upper() == wanted), None)
        if identity is None:
            known = ", ".join(m.id for m in info.module_identities) or "none"
            raise PolicyViolation(
                f"no matching TCB level: the TCB info has no TDX module identity {wanted} for the quote's "
                f"TDX module version {version} (it has {known})"
            )
        signer = identity.signer
    if body.mrsignerseam != signer.mrsigner:
        raise IdentityError(
            f"the TDX module's MRSIGNERSEAM {body.mrsignerseam.hex()} is not the signer the TCB info names "
            f"({signer.mrsigner.hex()})"
        )
    mask = signer.attributes_mask
    if _masked(body.seam_attributes, mask) != _masked(signer.attributes, mask):
        raise IdentityError(
            f"the TDX module's SEAMATTRIBUTES {body.seam_attributes.hex()} differ from the TCB info's "
            f"{signer.attributes.hex()} under the mask {mask.hex()}"
        )
    return identity


def _platform_level(info: TcbInfo, pck: PckExtensions, body: TdQuoteBody) -> TcbLevel:
    """The first TCB level that the PCK's SGX TCB and the quote's TEE_TCB_SVN both meet; PolicyViolation if none."""
    svn = body.tee_tcb_svn
    first_tdx = 2 if svn[1] else 0
    sgx_met = tdx_met = False
    for level in info.levels:
        sgx = zip(pck.sgx_tcb_components, level.sgx_components, strict=True)
        sgx_ok = pck.pcesvn >= level.pcesvn and all(have >= need for have, need in sgx)
        tdx_ok = all(svn[i] >= level.tdx_components[i] for i in range(first_tdx, 16))
        if sgx_ok and tdx_ok:
            return level
        sgx_met, tdx_met = sgx_met or sgx_ok, tdx_met or tdx_ok
    below = []
    if not sgx_met:
        below.append(f"the PCK certificate's SGX TCB {bytes(pck.sgx_tcb_components).hex()} with PCESVN {pck.pcesvn}")
    if not tdx_met:
        below.append(f"the quote's TEE_TCB_SVN {svn.hex()}")
    where = f"every TCB level (FMSPC {info.fmspc.hex()})"
    if below:
        raise PolicyViolation(
            f"no matching TCB level: {' and '.join(below)} {'is' if len(below) == 1 else 'are'} below {where}"
        )
    raise PolicyViolation(
        f"no matching TCB level: no level of {where} is met by both the PCK certificate's SGX TCB and the "
        f"quote's TEE_TCB_SVN {svn.hex()}"
    )


def _module_level(identity: ModuleIdentity, body: TdQuoteBody) -> IsvLevel:
    """The first level of the module identity that the module's SVN (TEE_TCB_SVN[0]) meets."""
    svn = body.tee_tcb_svn[0]
    for level in identity.levels:
        if svn >= level.isvsvn:
            return level
    raise PolicyViolation(f"no matching TCB level: the TDX module's SVN {svn} is below every level of {identity.id}")


def converge(platform: str, module: str) -> str:
    """The platform status, made worse by the module's as Intel's library does it (OutOfDate, Revoked)."""
    if module == "Revoked":
        return "Revoked"
    if module == "OutOfDate":
        if platform in ("UpToDate", "SWHardeningNeeded"):
            return "OutOfDate"
        if platform in ("ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"):
            return "OutOfDateConfigurationNeeded"
    return platform


def qe_level(identity: QeIdentity, report: QeReport) -> IsvLevel:
    """The QE identity level of the quoting enclave whose report this is.

    IdentityError when the enclave is not the one the identity describes (MRSIGNER, ISVPRODID, MISCSELECT
    and ATTRIBUTES under their masks); PolicyViolation when its ISVSVN is below every level.
    """
    if report.mrsigner != identity.mrsigner:
        raise IdentityError(
            f"the quoting enclave's MRSIGNER {report.mrsigner.hex()} is not the QE identity's {identity.mrsigner.hex()}"
        )
    if report.isvprodid != identity.isvprodid:
        raise IdentityError(
            f"the quoting enclave's ISVPRODID {report.isvprodid} is not the QE identity's {identity.isvprodid}"
        )
    if report.miscselect & identity.miscselect_mask != identity.miscselect:
        raise IdentityError(
            f"the quoting enclave's MISCSELECT {report.miscselect:08x} under the mask "
            f"{identity.miscselect_mask:08x} is not the QE identity's {identity.miscselect:08x}"
        )
    if _masked(report.attributes, identity.attributes_mask) != identity.attributes:
        raise IdentityError(
            f"the quoting enclave's ATTRIBUTES {report.attributes.hex()} under the mask "
            f"{identity.attributes_mask.hex()} are not the QE identity's {identity.attributes.hex()}"
        )
    for level in identity.levels:
        if report.isvsvn >= level.isvsvn:
            return level
    raise PolicyViolation(
        f"no matching QE TCB level: the quoting enclave's ISVSVN {report.isvsvn} is below every level of its identity"
    )


def _masked(value: bytes, mask: bytes) -> bytes:
    return bytes(v & m for v, m in zip(value, mask, strict=True))
