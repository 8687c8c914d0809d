"""The gateway's audit state folder: who this instance is, its key, and what it has witnessed.

Whoever can write the database can rewrite it, so the proof that records existed lives outside it:

* ``instance.json``: the instance id (restarts continue the same chain) and the database it is bound to;
* ``signing.key.pem`` (0600) / ``signing.pub.pem``: the ECDSA P-256 key that seals every commit;
* ``witness.jsonl``: every checkpoint, appended and fsynced; deleting the tail of the chain, its last
  checkpoints included, leaves a witness line that the database no longer matches;
* ``head``: the last committed (seq, hash), overwritten after every commit, so truncation after the last
  checkpoint is noticed too;
* ``writer.lock``: one writer per instance, or two processes would fork the chain.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives import serialization

from attest.errors import AttestError
from attest.keys import (
    PrivateKey,
    PublicKey,
    generate_private_key,
    key_id,
    load_private_key,
    save_private_key,
    sign_bytes,
)
from gateway.audit.canonical import canonical_dumps, format_time
from gateway.errors import AuditError
from sbom.fileio import write_atomically

__all__ = ["AuditState", "Head", "WitnessEntry", "seal_message"]

_HEAD_SIZE = 256


def seal_message(database_id: str, instance_id: str, seq: int, record_hash: str) -> bytes:
    """What a seal signs: the record's place (database, instance, seq) and its hash, as canonical JSON."""
    return canonical_dumps({"v": 1, "database": database_id, "instance": instance_id, "seq": seq,
                            "hash": record_hash}).encode()


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class WitnessEntry:
    """A checkpoint as the witness file keeps it (one JSON line)."""

    line: int
    database: str
    instance: str
    seq: int
    hash: str
    at: str
    seal: str


@dataclass
class AuditState:
    """An open state folder (``$MODELGATE_HOME/audit``)."""

    root: Path
    instance_id: str
    database_id: str | None
    key: PrivateKey
    _lock: BinaryIO | None = field(default=None, repr=False)
    _head: BinaryIO | None = field(default=None, repr=False)

    @classmethod
    def open(cls, home: Path, *, create: bool = True) -> AuditState:
        """The state under ``home/audit``; created (new instance id and key) when ``create`` and absent."""
        root = home / "audit"
        info, key_path = root / "instance.json", root / "signing.key.pem"
        if not info.exists():
            if not create:
                raise AuditError(f"{root} holds no gateway audit state (no instance.json)")
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not key_path.exists():
                key = generate_private_key("ecdsa-p256")
                save_private_key(key_path, key, None)
                _write(root / "signing.pub.pem", _public_pem(key.public_key()).encode(), 0o644)
            _write(info, _info_json(str(uuid.uuid4()), None), 0o644)
        try:
            document = json.loads(info.read_text())
            instance_id, database_id = str(uuid.UUID(document["instance_id"])), document.get("database_id")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AuditError(f"{info} is unreadable or malformed: {exc}") from exc
        try:
            key = load_private_key(key_path)
        except AttestError as exc:
            raise AuditError(f"the audit signing key: {exc.reason}") from None
        return cls(root, instance_id, database_id, key)

    @property
    def public_key(self) -> PublicKey:
        return self.key.public_key()

    @property
    def public_pem(self) -> str:
        return _public_pem(self.public_key)

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def bind(self, database_id: str) -> None:
        """Tie this instance to ``database_id`` on first use; a different database afterwards is refused."""
        if self.database_id == database_id:
            return
        if self.database_id is not None:
            raise AuditError(
                f"the state folder {self.root} belongs to audit database {self.database_id}, not {database_id}; "
                "a replaced database would hide the chain its witness knows. Give each database its own "
                "state folder ($MODELGATE_HOME)"
            )
        _write(self.root / "instance.json", _info_json(self.instance_id, database_id), 0o644)
        self.database_id = database_id

    def sign(self, message: bytes) -> str:
        """A base64 ECDSA signature by the instance key (a seal, a prune anchor)."""
        return base64.b64encode(sign_bytes(self.key, message)).decode()

    # -- the writer's exclusive lock -------------------------------------------------------------------

    def acquire_writer_lock(self) -> None:
        """Exclusive for the process's lifetime; AuditError when another writer holds it."""
        handle = open(self.root / "writer.lock", "a+b")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise AuditError(f"another gateway process is writing audit instance {self.instance_id} "
                             f"({self.root / 'writer.lock'} is locked)") from None
        self._lock = handle

    def close(self) -> None:
        """Release the writer lock and the head file."""
        if self._head is not None:
            self._head.close()
            self._head = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # -- head and witness ----------------------------------------------------------------------------

    def write_head(self, head: Head) -> None:
        """Overwrite the head in place: one small write after each commit, no fsync (see module doc)."""
        if self._head is None:
            path = self.root / "head"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            self._head = os.fdopen(fd, "r+b", buffering=0)
        line = json.dumps({"database": self.database_id, "seq": head.seq, "hash": head.hash}).encode()
        os.pwrite(self._head.fileno(), line.ljust(_HEAD_SIZE - 1) + b"\n", 0)

    def read_head(self) -> Head | None:
        """The head last written for the bound database; None if there is none."""
        for attempt in range(3):  # a read racing the writer's overwrite can see half of it
            try:
                raw = (self.root / "head").read_bytes()
            except FileNotFoundError:
                return None
            try:
                document = json.loads(raw)
                if document["database"] != self.database_id:
                    return None
                return Head(int(document["seq"]), str(document["hash"]))
            except (ValueError, KeyError, TypeError) as exc:
                if attempt == 2:
                    raise AuditError(f"{self.root / 'head'} is malformed: {exc}") from None
                time.sleep(0.01)
        return None

    def append_witness(self, seq: int, record_hash: str, at: datetime, seal: str) -> None:
        """Append a checkpoint to the witness file and fsync it before returning."""
        line = json.dumps({"database": self.database_id, "instance": self.instance_id, "seq": seq,
                           "hash": record_hash, "at": format_time(at), "seal": seal}, sort_keys=True)
        fd = os.open(self.root / "witness.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_witness(self) -> tuple[list[WitnessEntry], list[str]]:
        """Witness entries for the bound database, and the malformed lines (as "line N: why").

        An unterminated last line is a checkpoint whose append a crash cut short: it is skipped.
        """
        try:
            raw = (self.root / "witness.jsonl").read_bytes()
        except FileNotFoundError:
            return [], []
        lines = raw.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        elif lines:
            lines.pop()  # torn final append
        entries, bad = [], []
        for number, line in enumerate(lines, 1):
            try:
                d: dict[str, Any] = json.loads(line)
                entry = WitnessEntry(number, str(d["database"]), str(d["instance"]), int(d["seq"]),
                                     str(d["hash"]), str(d["at"]), str(d["seal"]))
            except (ValueError, KeyError, TypeError) as exc:
                bad.append(f"witness line {number}: {exc}")
                continue
            if entry.database == self.database_id:
                entries.append(entry)
        return entries, bad


def _info_json(instance_id: str, database_id: str | None) -> bytes:
    return (json.dumps({"instance_id": instance_id, "database_id": database_id,
                        "written": datetime.now(UTC).isoformat()}, indent=2) + "\n").encode()


def _public_pem(key: PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _write(path: Path, data: bytes, mode: int) -> None:
    try:
        write_atomically(path, data, mode=mode)
    except OSError as exc:
        raise AuditError(f"cannot write {path}: {exc.strerror or exc}") from exc
