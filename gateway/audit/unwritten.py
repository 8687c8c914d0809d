"""Records the database could not take at shutdown, kept in the state folder until the next start.

A response that was answered while the database was down must not vanish: the writer keeps it here
(redacted, as it would have been stored, one JSON line each, fsynced) and writes it first thing when
the gateway starts again.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from datetime import datetime
from pathlib import Path

from gateway.audit.records import Entry
from gateway.errors import AuditError

__all__ = ["keep_unwritten", "read_unwritten"]

log = logging.getLogger("modelgate.audit")


def keep_unwritten(path: Path, entries: list[Entry]) -> None:
    """Append ``entries`` to ``path`` and fsync; if even that fails, say loudly how many are lost."""
    lines = [json.dumps({
        "kind": e.kind, "at": e.at.isoformat(), "request_id": e.request_id, "session": e.session,
        "data": e.data_text,
        "bodies": [[digest, base64.b64encode(content).decode()] for digest, content in e.bodies],
    }, sort_keys=True) for e in entries]
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, "".join(line + "\n" for line in lines).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        log.critical("LOST %d audit records: the database and %s are both unwritable: %s", len(entries), path, exc)
        raise AuditError(f"{len(entries)} audit records are lost: cannot write {path}: {exc}") from exc


def read_unwritten(path: Path) -> list[Entry]:
    """The entries kept at ``path`` (none if it does not exist); AuditError for a damaged line."""
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return []
    entries = []
    for number, line in enumerate(raw.splitlines(), 1):
        try:
            d = json.loads(line)
            bodies = tuple((k, base64.b64decode(v)) for k, v in d["bodies"])
            entries.append(Entry(d["kind"], datetime.fromisoformat(d["at"]), json.loads(d["data"]), d["data"],
                                 d["request_id"], d["session"], bodies))
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError(f"{path} line {number} is malformed ({exc}); move it aside to start") from None
    return entries
