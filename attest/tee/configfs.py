"""Collecting SEV-SNP and TDX evidence inside a confidential guest through Linux configfs-tsm.

The kernel's interface (Documentation/ABI/testing/configfs-tsm): create a report entry under
``/sys/kernel/config/tsm/report``, write the 64 bytes of report data to ``inblob``, read the signed report
(SNP) or quote (TDX) from ``outblob`` and, on SNP, the certificate table from ``auxblob``. ``provider``
names the TEE and ``generation`` counts writes, so a second writer racing on the same entry is detected
rather than answered with a report for someone else's data.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

from attest.errors import AttestError
from attest.tee.claims import Platform
from attest.tee.evidence import EvidenceItem

__all__ = ["TSM_REPORT_ROOT", "ConfigfsTsmProvider"]

TSM_REPORT_ROOT = Path("/sys/kernel/config/tsm/report")
_PROVIDERS: dict[str, Platform] = {"sev_guest": "sev-snp", "tdx_guest": "tdx"}
_MAX_BLOB = 1 << 20


class ConfigfsTsmProvider:
    """Evidence from this guest's TEE; ``extra`` parts (certificates, collateral) are added to the item."""

    name = "configfs-tsm"

    def __init__(self, root: Path = TSM_REPORT_ROOT, *, privlevel: int | None = None,
                 extra: dict[str, bytes] | None = None) -> None:
        self.root = root
        self.privlevel = privlevel
        self.extra = dict(extra or {})

    @classmethod
    def available(cls, root: Path = TSM_REPORT_ROOT) -> bool:
        return root.is_dir()

    def collect(self, report_data: bytes) -> tuple[EvidenceItem, ...]:
        entry = self._create_entry()
        try:
            before = _read_int(entry / "generation")
            writes = 1
            _write(entry / "inblob", report_data)
            if self.privlevel is not None:
                _write(entry / "privlevel", str(self.privlevel).encode())
                writes += 1
            outblob = _read(entry / "outblob")
            auxblob = _read(entry / "auxblob", optional=True)
            provider = _read(entry / "provider").decode("ascii", "replace").strip()
            if _read_int(entry / "generation") != before + writes:
                raise AttestError("another process wrote to the configfs-tsm report entry while it was in use; "
                                  "the report cannot be trusted to carry this load's report data")
        finally:
            self._remove_entry(entry)
        if provider not in _PROVIDERS:
            raise AttestError(f"configfs-tsm provider {provider!r} is not one modelgate verifies "
                              "(sev_guest, tdx_guest)")
        platform = _PROVIDERS[provider]
        main = "report" if platform == "sev-snp" else "quote"
        parts = {main: outblob, **self.extra}
        if auxblob:
            parts["auxblob"] = auxblob
        return (EvidenceItem(platform, parts),)

    def _create_entry(self) -> Path:
        """A new report entry; the kernel populates its attributes as the directory is made."""
        entry = self.root / f"modelgate-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            entry.mkdir()
        except OSError as exc:
            raise AttestError(f"cannot create a configfs-tsm report entry in {self.root}: {exc.strerror}") from None
        return entry

    def _remove_entry(self, entry: Path) -> None:
        try:
            entry.rmdir()
        except OSError:
            pass  # the entry holds no secret; a leftover one is harmless and the kernel frees it on reboot


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise AttestError(f"cannot write {path}: {exc.strerror}") from None


def _read(path: Path, *, optional: bool = False) -> bytes:
    """``optional``: ``auxblob`` is absent or unsupported on TDX, and on SNP hosts that keep no certificates."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_BLOB + 1)
    except OSError as exc:
        if optional and exc.errno in (errno.ENOENT, errno.EOPNOTSUPP, errno.ENXIO):
            return b""
        raise AttestError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > _MAX_BLOB:
        raise AttestError(f"{path} is larger than {_MAX_BLOB} bytes")
    return data


def _read_int(path: Path) -> int:
    try:
        return int(_read(path).strip() or b"0")
    except ValueError:
        raise AttestError(f"{path} does not hold a number") from None
