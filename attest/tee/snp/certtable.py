"""The certificate table of an extended report (SNP_GET_EXT_REPORT data pages, configfs-tsm ``auxblob``).

The GHCB specification lays it out as 24-byte entries (GUID, offset, length) ended by an all-zero
entry, then the certificates, at offsets from the start of the blob. The host writes this table, so
it is untrusted input: every entry must lie after the header and inside the blob, entries must not
overlap, and a GUID may appear once. Entries with GUIDs we do not know are kept but not used.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from attest.errors import EvidenceFormatError

__all__ = ["GUIDS", "CertTable", "CertTableEntry", "parse_cert_table"]

GUIDS: Mapping[uuid.UUID, str] = {
    uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae"): "ark",
    uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782"): "ask",  # the ASVK travels under the ASK's GUID
    uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd"): "vcek",
    uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1"): "vlek",
}
"""The GUIDs the GHCB specification assigns to AMD's certificates, and the names ``verify_snp`` uses."""

_ENTRY = 24
_TERMINATOR = bytes(_ENTRY)


@dataclass(frozen=True, slots=True)
class CertTableEntry:
    guid: uuid.UUID
    offset: int
    data: bytes

    @property
    def name(self) -> str | None:
        """``ark``, ``ask``, ``vcek`` or ``vlek``; None for a GUID we do not use."""
        return GUIDS.get(self.guid)


@dataclass(frozen=True, slots=True)
class CertTable:
    entries: tuple[CertTableEntry, ...]

    def certificates(self) -> dict[str, bytes]:
        """Name -> certificate bytes for the entries whose GUID is known."""
        return {e.name: e.data for e in self.entries if e.name is not None}


def parse_cert_table(blob: bytes) -> CertTable:
    """The entries of ``blob``; EvidenceFormatError naming the entry that is malformed. Empty: no entries."""
    if not blob:
        return CertTable(())
    headers: list[tuple[uuid.UUID, int, int]] = []
    for start in range(0, len(blob) - _ENTRY + 1, _ENTRY):
        entry = blob[start : start + _ENTRY]
        if entry == _TERMINATOR:
            break
        headers.append(
            (
                uuid.UUID(bytes_le=entry[:16]),
                int.from_bytes(entry[16:20], "little"),
                int.from_bytes(entry[20:], "little"),
            )
        )
    else:
        raise EvidenceFormatError(
            f"the certificate table ({len(blob)} bytes) has no terminating all-zero entry within the blob"
        )
    header_end = (len(headers) + 1) * _ENTRY
    seen: set[uuid.UUID] = set()
    for index, (guid, offset, length) in enumerate(headers):
        where = f"certificate table entry {index} ({GUIDS.get(guid, guid)})"
        if guid in seen:
            raise EvidenceFormatError(f"{where}: the GUID appears twice in the table")
        seen.add(guid)
        if length == 0:
            raise EvidenceFormatError(f"{where}: the entry is empty (length 0)")
        if offset < header_end:
            raise EvidenceFormatError(f"{where}: offset {offset} points into the table header (0..{header_end - 1})")
        if offset + length > len(blob):
            raise EvidenceFormatError(
                f"{where}: bytes {offset}..{offset + length - 1} lie beyond the end of the blob ({len(blob)} bytes)"
            )
    by_offset = sorted(range(len(headers)), key=lambda i: headers[i][1])
    for before, after in zip(by_offset, by_offset[1:], strict=False):
        if headers[before][1] + headers[before][2] > headers[after][1]:
            raise EvidenceFormatError(f"certificate table entries {before} and {after} overlap")
    return CertTable(tuple(CertTableEntry(g, o, bytes(blob[o : o + n])) for g, o, n in headers))
