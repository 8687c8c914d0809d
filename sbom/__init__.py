"""The model artifact: its files, their digests, their formats and its CycloneDX ML-BOM.

    >>> from sbom import scan_model, hash_files
    >>> tree = scan_model("path/to/model")                      # doctest: +SKIP
    >>> digests = hash_files(tree.root, tree.files)            # doctest: +SKIP
"""

from sbom.errors import BomError, MalformedFileError, RefusedFormatError, SbomError, UnsafePathError
from sbom.hashing import FileDigest, hash_files
from sbom.inventory import DEFAULT_IGNORES, ModelFile, ModelTree, check_relative_name, scan_model

__all__ = [
    "DEFAULT_IGNORES",
    "BomError",
    "FileDigest",
    "MalformedFileError",
    "ModelFile",
    "ModelTree",
    "RefusedFormatError",
    "SbomError",
    "UnsafePathError",
    "check_relative_name",
    "hash_files",
    "scan_model",
]
