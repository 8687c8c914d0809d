"""TCB_VERSION: each firmware layer's security patch level, packed into 64 bits per product.

AMD changed the packing with Turin (an FMC byte first, SNP moved down), so a TCB value means nothing
until the product is known. The product comes from the report's CPUID bytes (ABI v3 and later) or,
for v2 reports, from the AMD root the signing key chains to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

__all__ = ["PRODUCTS", "Product", "product_from_cpuid", "product_named", "tcb_components"]

Product = Literal["Milan", "Genoa", "Turin"]
PRODUCTS: tuple[Product, ...] = ("Milan", "Genoa", "Turin")

# Byte index of each component in the little-endian 64-bit TCB_VERSION (SEV-SNP ABI spec, TCB_VERSION).
# The bytes not named are reserved.
_ZEN3_ZEN4 = {"bootloader": 0, "tee": 1, "snp": 6, "microcode": 7}
_LAYOUTS: Mapping[Product, Mapping[str, int]] = {
    "Milan": _ZEN3_ZEN4,
    "Genoa": _ZEN3_ZEN4,
    "Turin": {"fmc": 0, "bootloader": 1, "tee": 2, "snp": 3, "microcode": 7},
}

# (family, first model, last model) -> product, from AMD's KDS specification, "Determining the Product Name".
# Bergamo and Siena (family 19h, models A0h-AFh) are endorsed as Genoa.
_CPUID_PRODUCTS: tuple[tuple[int, int, int, Product], ...] = (
    (0x19, 0x00, 0x0F, "Milan"),
    (0x19, 0x10, 0x1F, "Genoa"),
    (0x19, 0xA0, 0xAF, "Genoa"),
    (0x1A, 0x00, 0x1F, "Turin"),
)


def tcb_components(raw: int, product: Product) -> dict[str, int]:
    """The named SPLs of a TCB_VERSION value, as ``product`` packs them."""
    packed = raw.to_bytes(8, "little")
    return {name: packed[index] for name, index in _LAYOUTS[product].items()}


def product_from_cpuid(family: int, model: int) -> Product | None:
    """The product a v3+ report's CPUID_FAM_ID / CPUID_MOD_ID name; None for a chip we do not know."""
    for fam, first, last, product in _CPUID_PRODUCTS:
        if family == fam and first <= model <= last:
            return product
    return None


def product_named(name: str | None) -> Product | None:
    """The product of a VCEK productName such as ``Milan-B0`` (family, then stepping); None if not one of ours."""
    family = (name or "").split("-")[0]
    return next((p for p in PRODUCTS if p == family), None)
