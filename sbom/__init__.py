"""The model artifact: its files, their digests, their formats and its CycloneDX ML-BOM.

    >>> from sbom import scan_model, hash_files, describe_model, build_bom, BomOptions
    >>> tree = scan_model("path/to/model")                               # doctest: +SKIP
    >>> digests = hash_files(tree.root, tree.files, sha512=True)        # doctest: +SKIP
    >>> formats, facts = describe_model(tree)                            # doctest: +SKIP
    >>> bom = build_bom(tree, digests, formats, facts, BomOptions())     # doctest: +SKIP
"""

from sbom.bom import BomOptions, bom_file_digests, build_bom, describe_model, load_bom, read_bom, render_bom, write_bom
from sbom.errors import BomError, MalformedFileError, RefusedFormatError, SbomError, UnsafePathError
from sbom.formats import FileFormat, detect_format
from sbom.hashing import FileDigest, hash_files
from sbom.inventory import DEFAULT_IGNORES, ModelFile, ModelTree, check_relative_name, scan_model
from sbom.modelcard import ModelFacts
from sbom.roles import Role
from sbom.summary import BomSummary, summarize_bom

__all__ = [
    "DEFAULT_IGNORES",
    "BomError",
    "BomOptions",
    "BomSummary",
    "FileDigest",
    "FileFormat",
    "MalformedFileError",
    "ModelFacts",
    "ModelFile",
    "ModelTree",
    "RefusedFormatError",
    "Role",
    "SbomError",
    "UnsafePathError",
    "bom_file_digests",
    "build_bom",
    "check_relative_name",
    "describe_model",
    "detect_format",
    "hash_files",
    "load_bom",
    "read_bom",
    "render_bom",
    "scan_model",
    "summarize_bom",
    "write_bom",
]
