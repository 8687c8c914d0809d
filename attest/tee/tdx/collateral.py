"""Intel PCS collateral for TDX: TCB info v3, the TD_QE identity v2, their issuer chains and the CRLs.

This is what a verifier fetches from the PCS (or a caching service) to judge a quote: the TCB info of the
platform's FMSPC, the quoting enclave's identity, the chains that signed them (Intel SGX TCB Signing up
to the Intel SGX Root CA), the PCK CRL and the root CA's CRL. Reading is strict (every field known, every
size exact); checking the signatures and dates is ``verify_tdx``'s job, at the times it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from cryptography import x509

from attest.errors import EvidenceFormatError
from attest.tee.tdx.pcs_json import (
    read_date,
    read_hex,
    read_int,
    read_list,
    read_object,
    read_signed,
    read_str,
)
from attest.tee.tdx.pem import load_crl, pem_chain
from policies.attestation import TdxTcbStatus

__all__ = [
    "IsvLevel",
    "ModuleIdentity",
    "QeIdentity",
    "SeamSigner",
    "TcbInfo",
    "TcbLevel",
    "TdxCollateral",
    "parse_qe_identity",
    "parse_tcb_info",
]

_TCB_STATUSES = frozenset(get_args(TdxTcbStatus))
_ISV_STATUSES = frozenset({"UpToDate", "OutOfDate", "Revoked"})  # TDX module and QE levels
_LEVEL_FIELDS = ("tcb", "tcbDate", "tcbStatus")
_SIGNER_FIELDS = ("mrsigner", "attributes", "attributesMask")
_DOCUMENT_FIELDS = ("id", "version", "issueDate", "nextUpdate", "tcbEvaluationDataNumber")
_TCB_INFO_FIELDS = (*_DOCUMENT_FIELDS, "fmspc", "pceId", "tcbType", "tdxModule", "tcbLevels")
_QE_IDENTITY_FIELDS = (
    *_DOCUMENT_FIELDS,
    *("miscselect", "miscselectMask", "attributes", "attributesMask", "mrsigner", "isvprodid", "tcbLevels"),
)


@dataclass(frozen=True, slots=True)
class IsvLevel:
    """A TCB level of an enclave or a TDX module: one ISVSVN and its status."""

    isvsvn: int
    date: datetime
    status: str
    advisory_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SeamSigner:
    """Who may sign the TDX module (MRSIGNERSEAM) and the SEAM attributes it must have under the mask."""

    mrsigner: bytes
    attributes: bytes
    attributes_mask: bytes


@dataclass(frozen=True, slots=True)
class ModuleIdentity:
    """A TDX module major version (``TDX_01``...) with its signer and its own TCB levels."""

    id: str
    signer: SeamSigner
    levels: tuple[IsvLevel, ...]


@dataclass(frozen=True, slots=True)
class TcbLevel:
    """One TCB level of the platform: the minimum SVNs that earn ``status``."""

    sgx_components: tuple[int, ...]
    pcesvn: int
    tdx_components: tuple[int, ...]
    date: datetime
    status: str
    advisory_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TcbInfo:
    """TDX TCB info for one FMSPC; ``signed`` is the exact signed text of the ``tcbInfo`` object."""

    fmspc: bytes
    pce_id: bytes
    issue_date: datetime
    next_update: datetime
    evaluation_data_number: int
    tdx_module: SeamSigner
    module_identities: tuple[ModuleIdentity, ...]
    levels: tuple[TcbLevel, ...]
    signed: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class QeIdentity:
    """The identity of Intel's TD quoting enclave; ``signed`` is the exact ``enclaveIdentity`` text."""

    issue_date: datetime
    next_update: datetime
    evaluation_data_number: int
    miscselect: int
    miscselect_mask: int
    attributes: bytes
    attributes_mask: bytes
    mrsigner: bytes
    isvprodid: int
    levels: tuple[IsvLevel, ...]
    signed: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class TdxCollateral:
    """Everything ``verify_tdx`` needs besides the quote to judge the TCB, as read from the PCS."""

    tcb_info: TcbInfo
    tcb_info_chain: tuple[x509.Certificate, ...]
    qe_identity: QeIdentity
    qe_identity_chain: tuple[x509.Certificate, ...]
    pck_crl: x509.CertificateRevocationList
    """Issued by the CA that issued the PCK certificate (Intel SGX PCK Platform CA or Processor CA)."""
    root_crl: x509.CertificateRevocationList
    """Issued by the Intel SGX Root CA: covers the PCK CAs and the TCB signing certificate."""

    @classmethod
    def from_pcs(
        cls,
        *,
        tcb_info: bytes,
        tcb_info_chain: bytes,
        qe_identity: bytes,
        qe_identity_chain: bytes,
        pck_crl: bytes,
        root_crl: bytes,
    ) -> TdxCollateral:
        """Collateral from PCS responses: JSON bodies, PEM issuer chains (the ``*-Issuer-Chain`` headers), CRLs."""
        return cls(
            tcb_info=parse_tcb_info(tcb_info),
            tcb_info_chain=pem_chain(tcb_info_chain, "the TCB info issuer chain"),
            qe_identity=parse_qe_identity(qe_identity),
            qe_identity_chain=pem_chain(qe_identity_chain, "the QE identity issuer chain"),
            pck_crl=load_crl(pck_crl, "the PCK CRL"),
            root_crl=load_crl(root_crl, "the root CA CRL"),
        )


def parse_tcb_info(raw: bytes) -> TcbInfo:
    """A PCS TDX TCB info response (``/tdx/certification/v4/tcb``)."""
    info, signed, signature = read_signed(raw, "tcbInfo", "the TCB info")
    what = "the TCB info"
    read_object(info, what, required=_TCB_INFO_FIELDS, optional=("tdxModuleIdentities",))
    kind, version = read_str(info["id"], f"{what}: id"), read_int(info["version"], f"{what}: version", limit=0xFF)
    if (kind, version) != ("TDX", 3):
        raise EvidenceFormatError(f"{what} is {kind[:20]!r} version {version}, not TDX version 3")
    if read_int(info["tcbType"], f"{what}: tcbType", limit=0xFFFF) != 0:
        raise EvidenceFormatError(f"{what}: tcbType {info['tcbType']} is not supported (only 0)")
    identities = read_list(info.get("tdxModuleIdentities", []), f"{what}: tdxModuleIdentities")
    return TcbInfo(
        fmspc=read_hex(info["fmspc"], 6, f"{what}: fmspc"),
        pce_id=read_hex(info["pceId"], 2, f"{what}: pceId"),
        issue_date=read_date(info["issueDate"], f"{what}: issueDate"),
        next_update=read_date(info["nextUpdate"], f"{what}: nextUpdate"),
        evaluation_data_number=read_int(
            info["tcbEvaluationDataNumber"], f"{what}: tcbEvaluationDataNumber", limit=0xFFFFFFFF
        ),
        tdx_module=_seam_signer(
            read_object(info["tdxModule"], f"{what}: tdxModule", required=_SIGNER_FIELDS), f"{what}: tdxModule"
        ),
        module_identities=tuple(
            _module_identity(m, f"{what}: tdxModuleIdentities[{i}]") for i, m in enumerate(identities)
        ),
        levels=tuple(
            _tcb_level(level, f"{what}: tcbLevels[{i}]")
            for i, level in enumerate(read_list(info["tcbLevels"], f"{what}: tcbLevels"))
        ),
        signed=signed,
        signature=signature,
    )


def parse_qe_identity(raw: bytes) -> QeIdentity:
    """A PCS TD quoting enclave identity response (``/tdx/certification/v4/qe/identity``)."""
    identity, signed, signature = read_signed(raw, "enclaveIdentity", "the QE identity")
    what = "the QE identity"
    read_object(identity, what, required=_QE_IDENTITY_FIELDS)
    kind = read_str(identity["id"], f"{what}: id")
    version = read_int(identity["version"], f"{what}: version", limit=0xFF)
    if (kind, version) != ("TD_QE", 2):
        raise EvidenceFormatError(f"{what} is {kind[:20]!r} version {version}, not TD_QE version 2")
    return QeIdentity(
        issue_date=read_date(identity["issueDate"], f"{what}: issueDate"),
        next_update=read_date(identity["nextUpdate"], f"{what}: nextUpdate"),
        evaluation_data_number=read_int(
            identity["tcbEvaluationDataNumber"], f"{what}: tcbEvaluationDataNumber", limit=0xFFFFFFFF
        ),
        miscselect=int.from_bytes(read_hex(identity["miscselect"], 4, f"{what}: miscselect"), "big"),
        miscselect_mask=int.from_bytes(read_hex(identity["miscselectMask"], 4, f"{what}: miscselectMask"), "big"),
        attributes=read_hex(identity["attributes"], 16, f"{what}: attributes"),
        attributes_mask=read_hex(identity["attributesMask"], 16, f"{what}: attributesMask"),
        mrsigner=read_hex(identity["mrsigner"], 32, f"{what}: mrsigner"),
        isvprodid=read_int(identity["isvprodid"], f"{what}: isvprodid", limit=0xFFFF),
        levels=_isv_levels(identity["tcbLevels"], f"{what}: tcbLevels"),
        signed=signed,
        signature=signature,
    )


def _seam_signer(module: dict[str, Any], what: str) -> SeamSigner:
    return SeamSigner(
        mrsigner=read_hex(module["mrsigner"], 48, f"{what}: mrsigner"),
        attributes=read_hex(module["attributes"], 8, f"{what}: attributes"),
        attributes_mask=read_hex(module["attributesMask"], 8, f"{what}: attributesMask"),
    )


def _module_identity(value: object, what: str) -> ModuleIdentity:
    identity = read_object(value, what, required=("id", *_SIGNER_FIELDS, "tcbLevels"))
    return ModuleIdentity(
        id=read_str(identity["id"], f"{what}: id"),
        signer=_seam_signer(identity, what),
        levels=_isv_levels(identity["tcbLevels"], f"{what}: tcbLevels"),
    )


def _isv_levels(value: object, what: str) -> tuple[IsvLevel, ...]:
    levels = []
    for i, item in enumerate(read_list(value, what)):
        where = f"{what}[{i}]"
        level = read_object(item, where, required=_LEVEL_FIELDS, optional=("advisoryIDs",))
        tcb = read_object(level["tcb"], f"{where}: tcb", required=("isvsvn",))
        levels.append(
            IsvLevel(
                isvsvn=read_int(tcb["isvsvn"], f"{where}: isvsvn", limit=0xFFFF),
                date=read_date(level["tcbDate"], f"{where}: tcbDate"),
                status=_status(level["tcbStatus"], _ISV_STATUSES, f"{where}: tcbStatus"),
                advisory_ids=_advisories(level, where),
            )
        )
    return tuple(levels)


def _tcb_level(value: object, what: str) -> TcbLevel:
    level = read_object(value, what, required=_LEVEL_FIELDS, optional=("advisoryIDs",))
    tcb = read_object(level["tcb"], f"{what}: tcb", required=("sgxtcbcomponents", "pcesvn", "tdxtcbcomponents"))
    return TcbLevel(
        sgx_components=_components(tcb["sgxtcbcomponents"], f"{what}: sgxtcbcomponents"),
        pcesvn=read_int(tcb["pcesvn"], f"{what}: pcesvn", limit=0xFFFF),
        tdx_components=_components(tcb["tdxtcbcomponents"], f"{what}: tdxtcbcomponents"),
        date=read_date(level["tcbDate"], f"{what}: tcbDate"),
        status=_status(level["tcbStatus"], _TCB_STATUSES, f"{what}: tcbStatus"),
        advisory_ids=_advisories(level, what),
    )


def _components(value: object, what: str) -> tuple[int, ...]:
    svns = []
    for i, item in enumerate(read_list(value, what, size=16)):
        component = read_object(item, f"{what}[{i}]", required=("svn",), optional=("category", "type"))
        svns.append(read_int(component["svn"], f"{what}[{i}]: svn", limit=255))
    return tuple(svns)


def _status(value: object, allowed: frozenset[str], what: str) -> str:
    status = read_str(value, what)
    if status not in allowed:
        raise EvidenceFormatError(f"{what} {status[:40]!r} is not one of {', '.join(sorted(allowed))}")
    return status


def _advisories(level: dict[str, Any], what: str) -> tuple[str, ...]:
    if "advisoryIDs" not in level:
        return ()
    items = read_list(level["advisoryIDs"], f"{what}: advisoryIDs")
    return tuple(read_str(item, f"{what}: advisoryIDs") for item in items)
