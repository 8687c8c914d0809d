"""Hashing throughput of modelgate against single-threaded hashlib.sha256, on the same page-cached files.

    python bench/hash_throughput.py [--size-gb 2] [--files 8] [--dir DIR] [--json]

Target: modelgate's parallel hashing reaches at least 0.9 x (cores x the single-thread rate).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from sbom.hashing import CHUNK_SIZE, hash_files
from sbom.inventory import scan_model

_BLOCK = 64 << 20


def make_file_set(folder: Path, total_bytes: int, count: int) -> None:
    """Shards of pseudo-random bytes, as a sharded safetensors checkpoint would look to a hasher."""
    block = os.urandom(_BLOCK)
    per_file = total_bytes // count
    for i in range(count):
        with open(folder / f"shard-{i:05d}.bin", "wb") as f:
            left = per_file
            while left:
                n = min(left, _BLOCK)
                f.write(block[:n] if i % 2 == 0 else block[-n:])
                left -= n


def single_thread_sha256(folder: Path) -> float:
    """The baseline: one thread, hashlib.sha256, the same chunked reads."""
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    start = time.perf_counter()
    for path in sorted(folder.iterdir()):
        h = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                h.update(view[:n])
    return time.perf_counter() - start


def single_thread_both(path: Path) -> float:
    """The SBOM baseline for one file: sha256 then sha512 of each chunk, in one thread."""
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    start = time.perf_counter()
    h256, h512 = hashlib.sha256(), hashlib.sha512()
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h256.update(view[:n])
            h512.update(view[:n])
    return time.perf_counter() - start


def modelgate_hash(model: Path, *, sha512: bool = False) -> float:
    tree = scan_model(model)
    start = time.perf_counter()
    hash_files(tree.root, tree.files, sha512=sha512)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is kept")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the file set [default: a temp dir]")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    total = int(args.size_gb * 1e9)
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="modelgate-bench-", dir=args.dir) as tmp:
        folder = Path(tmp)
        make_file_set(folder, total, args.files)
        single_thread_sha256(folder)  # warm the page cache
        base = min(single_thread_sha256(folder) for _ in range(args.repeat))
        ours = min(modelgate_hash(folder) for _ in range(args.repeat))
        both = min(modelgate_hash(folder, sha512=True) for _ in range(args.repeat))
        one = folder / "shard-00000.bin"
        one_base = min(single_thread_both(one) for _ in range(args.repeat))
        one_ours = min(modelgate_hash(one, sha512=True) for _ in range(args.repeat))
        one_size = one.stat().st_size
        size = sum(p.stat().st_size for p in folder.iterdir())

    gbps = lambda seconds: size / seconds / 1e9  # noqa: E731
    ratio = base / ours
    target = 0.9 * cores
    result = {
        "bytes": size,
        "files": args.files,
        "cores": cores,
        "single_thread_sha256_gbps": round(gbps(base), 3),
        "modelgate_sha256_gbps": round(gbps(ours), 3),
        "modelgate_sha256_sha512_gbps": round(gbps(both), 3),
        "single_file_sha256_sha512_speedup": round(one_base / one_ours, 3),
        "ratio_vs_single_thread": round(ratio, 3),
        "target_ratio": round(target, 3),
        "meets_target": ratio >= target,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"file set: {size / 1e9:.2f} GB in {args.files} files, page-cached, {cores} cores")
        print(f"single-thread hashlib.sha256 : {result['single_thread_sha256_gbps']:.3f} GB/s")
        print(f"modelgate sha256             : {result['modelgate_sha256_gbps']:.3f} GB/s")
        print(f"modelgate sha256+sha512 (SBOM): {result['modelgate_sha256_sha512_gbps']:.3f} GB/s")
        print(f"one {one_size / 1e9:.2f} GB file, sha256+sha512: {one_base / one_ours:.2f}x "
              "a single thread (both digests of each chunk at once)")
        print(f"ratio {ratio:.2f}x single-thread; target >= {target:.2f}x (0.9 x {cores} cores): "
              f"{'met' if result['meets_target'] else 'NOT met'}")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
