"""Agents and their API keys: issued once, stored as a hash, looked up on every request from memory.

A key is ``mgk_`` and 256 random bits (base64url). The database keeps only its SHA-256: with that much
entropy a plain hash cannot be reversed or guessed, so a keyed hash (whose key would have to live beside
the database anyway) or a slow password hash (which would cost milliseconds on every request) adds
nothing. Lookup hashes the presented key and finds the digest in a dict: what timing can reveal is
about the digest, which an attacker cannot steer towards a valid key, and the final comparison is
``hmac.compare_digest``.

The proxy calls ``AgentStore.lookup`` on every request; it never touches the database. A background
thread reloads the table every ``refresh_s`` seconds (revocation takes effect within that), and if the
database cannot be read for ``max_stale_s`` lookups fail with AuditUnavailable rather than trusting an
old list.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from gateway.audit.db import AuditDatabase
from gateway.audit.models import AgentRow
from gateway.errors import AgentError, AuditUnavailable

__all__ = ["KEY_PREFIX", "Agent", "AgentStore", "IssuedKey", "add_agent", "list_agents", "revoke_agent"]

log = logging.getLogger("modelgate.audit")

KEY_PREFIX = "mgk_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MAX_KEY = 128


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    profile: str
    key_prefix: str
    """The key's first characters, to tell keys apart in lists; never enough to use."""
    created_at: datetime
    revoked_at: datetime | None = None

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "profile": self.profile, "key_prefix": self.key_prefix,
                "created_at": self.created_at.isoformat(),
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


@dataclass(frozen=True, slots=True)
class IssuedKey:
    agent: Agent
    key: str
    """Shown once; only its hash is stored."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _agent(row: AgentRow) -> Agent:
    return Agent(row.name, row.profile, row.key_prefix, row.created_at, row.revoked_at)


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise AgentError(f"{what} {value!r} must be 1-128 letters, digits, '.', '_' or '-', starting with a "
                         "letter or digit")
    return value


def add_agent(db: AuditDatabase, name: str, *, profile: str = "default") -> IssuedKey:
    """Issue a key for a new agent ``name``; AgentError if the name is taken (revoked names stay taken)."""
    _check_name(name, "agent name")
    _check_name(profile, "profile")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = AgentRow(name=name, profile=profile, key_hash=_hash(key), key_prefix=key[:12],
                   created_at=datetime.now(UTC))
    try:
        with db.sessions() as session, session.begin():
            session.add(row)
    except IntegrityError:
        raise AgentError(f"an agent named {name!r} already exists") from None
    except SQLAlchemyError as exc:
        raise AuditUnavailable(f"cannot write the agent registry: {exc}") from exc
    return IssuedKey(_agent(row), key)


def list_agents(db: AuditDatabase) -> list[Agent]:
    with db.sessions() as session:
        return [_agent(row) for row in session.scalars(select(AgentRow).order_by(AgentRow.name))]


def revoke_agent(db: AuditDatabase, name: str) -> Agent:
    """Revoke ``name``'s key; AgentError if there is no such agent. Revoking twice keeps the first time."""
    with db.sessions() as session, session.begin():
        row = session.scalars(select(AgentRow).where(AgentRow.name == name)).first()
        if row is None:
            raise AgentError(f"no agent named {name!r}")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
        return _agent(row)


class AgentStore:
    """The agents allowed now, by key hash, reloaded in the background."""

    def __init__(self, db: AuditDatabase, *, refresh_s: float = 2.0, max_stale_s: float = 30.0) -> None:
        self._db, self._refresh_s, self._max_stale_s = db, refresh_s, max_stale_s
        self._by_hash: dict[str, tuple[str, Agent]] = {}
        self._loaded_at = 0.0
        self._stop = threading.Event()
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="modelgate-agent-store", daemon=True)
        self._thread.start()

    def lookup(self, key: str) -> Agent | None:
        """The active agent whose key this is, or None. AuditUnavailable if the registry is too stale to trust."""
        if time.monotonic() - self._loaded_at > self._max_stale_s:
            raise AuditUnavailable(f"the agent registry could not be read for over {self._max_stale_s:g}s")
        if not key.startswith(KEY_PREFIX) or len(key) > _MAX_KEY:
            return None
        digest = _hash(key)
        found = self._by_hash.get(digest)
        if found is None or not hmac.compare_digest(found[0], digest):
            return None
        return found[1]

    def refresh(self) -> None:
        """Reload now; AuditUnavailable if the database cannot be read (the old list stays until stale)."""
        try:
            with self._db.sessions() as session:
                rows = session.scalars(select(AgentRow).where(AgentRow.revoked_at.is_(None))).all()
        except SQLAlchemyError as exc:
            raise AuditUnavailable(f"cannot read the agent registry: {exc}") from exc
        self._by_hash = {row.key_hash: (row.key_hash, _agent(row)) for row in rows}
        self._loaded_at = time.monotonic()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._refresh_s):
            try:
                self.refresh()
            except AuditUnavailable as exc:
                log.error("%s (keeping the list loaded %.0fs ago)", exc.reason, time.monotonic() - self._loaded_at)
