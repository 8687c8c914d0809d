"""The TDX vectors under ../shared/vectors/tee/tdx (or their copies), and ways to mutate them."""

from __future__ import annotations

import base64
import re
import struct
from datetime import datetime

from hypothesis import strategies as st

from attest.tee.tdx import TdxCollateral
from tests.conftest import shared_path

SPR = ("go-tdx-guest", "tdx_prod_quote_SPR_E4.dat")
V5 = ("go-tdx-guest", "quote_v5_sample.dat")
DEBUG = ("trustee", "tdx_quote_4.dat")
CCEL = ("go-tdx-guest", "ccel", "cos-113-tdx-quote.dat")
TDREPORT = ("go-tdx-guest", "report.dat")

TCB_INFO = "sample_tcbInfo_response"
TCB_INFO_V5 = "sample_tcbinfo_response_v5"


def tdx_vector(*parts: str) -> bytes:
    return shared_path("vectors", "tee", "tdx", *parts).read_bytes()


def pcs(name: str) -> bytes:
    """One of go-tdx-guest's Intel PCS samples."""
    return tdx_vector("go-tdx-guest", name)


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T00:00:00+00:00")


def collateral(info: str = TCB_INFO, **replace: bytes) -> TdxCollateral:
    """The sample collateral with the TCB info file ``info``, any raw piece replaced by ``replace``."""
    raw = {
        "tcb_info": pcs(info),
        "tcb_info_chain": pcs("tcbinfo_issuer_chain.pem"),
        "qe_identity": pcs("sample_qeIdentity_response"),
        "qe_identity_chain": pcs("qeidentity_issuer_chain.pem"),
        "pck_crl": pcs("pckcrl"),
        "root_crl": pcs("rootcrl.der"),
    }
    return TdxCollateral.from_pcs(**{**raw, **replace})


def flip(data: bytes, offset: int, bit: int = 0) -> bytes:
    return data[:offset] + bytes([data[offset] ^ (1 << bit)]) + data[offset + 1 :]


def flip_in_pem(pem: bytes, index: int, offset_from_end: int = 1) -> bytes:
    """``pem`` with one bit flipped in certificate ``index``'s DER (by default in its signature's last byte).

    Base64 of the same number of bytes has the same length, so the quote's declared sizes still hold.
    """
    blocks = list(re.finditer(rb"(-----BEGIN CERTIFICATE-----\n)([A-Za-z0-9+/=\n]+?)(-----END CERTIFICATE-----)", pem))
    block = blocks[index]
    body = block.group(2)
    der = base64.b64decode(body.replace(b"\n", b""))
    der = flip(der, len(der) - offset_from_end)
    encoded = base64.b64encode(der)
    width = body.index(b"\n") if b"\n" in body else len(encoded)
    lines = b"\n".join(encoded[i : i + width] for i in range(0, len(encoded), width)) + b"\n"
    assert len(lines) == len(body)
    return pem[: block.start(2)] + lines + pem[block.end(2) :]


def length_fields(quote: bytes) -> dict[str, int]:
    """The offsets of a v4 or v5 quote's type and size fields, read independently of the parser."""
    version = struct.unpack_from("<H", quote)[0]
    fields = {} if version == 4 else {"body_type": 48, "body_size": 50}
    signature_size = 48 + 584 if version == 4 else 54 + struct.unpack_from("<I", quote, 50)[0]
    certification = signature_size + 4 + 128
    auth_size = certification + 6 + 384 + 64
    nested = auth_size + 2 + struct.unpack_from("<H", quote, auth_size)[0]
    return fields | {
        "signature_size": signature_size,
        "certification_type": certification,
        "certification_size": certification + 2,
        "auth_size": auth_size,
        "nested_type": nested,
        "nested_size": nested + 2,
    }


def pck_chain_span(quote: bytes) -> tuple[int, int]:
    """Where the PEM chain of a v4 or v5 quote lies."""
    nested = length_fields(quote)["nested_type"]
    return nested + 6, nested + 6 + struct.unpack_from("<I", quote, nested + 2)[0]


def mutations(valid: bytes, hot: tuple[int, ...] = ()) -> st.SearchStrategy[bytes]:
    """Bit flips, truncations, insertions, and 16- and 32-bit fields overwritten with extremes.

    ``hot`` offsets (length fields) are overwritten more often than chance alone would.
    """
    size = len(valid)
    offsets = st.integers(0, size - 1)
    fields = st.sampled_from(hot) if hot else st.integers(0, size - 4)
    flipped = st.tuples(offsets, st.integers(0, 7)).map(lambda p: flip(valid, *p))
    truncated = st.integers(0, size - 1).map(lambda n: valid[:n])
    inserted = st.tuples(offsets, st.binary(min_size=1, max_size=16)).map(
        lambda p: valid[: p[0]] + p[1] + valid[p[0] :]
    )
    word = st.tuples(
        st.one_of(fields, st.integers(0, size - 4)), st.sampled_from([0, 1, 0xFFFF, 2**31, 2**32 - 1])
    ).map(lambda p: valid[: p[0]] + struct.pack("<I", p[1]) + valid[p[0] + 4 :])
    half = st.tuples(st.one_of(fields, st.integers(0, size - 2)), st.integers(0, 0xFFFF)).map(
        lambda p: valid[: p[0]] + struct.pack("<H", p[1]) + valid[p[0] + 2 :]
    )
    return st.one_of(flipped, truncated, inserted, word, half)
