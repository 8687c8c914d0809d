"""Opening the audit database: migrations build exactly the models' schema; SQLite is WAL and durable."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import text

from gateway.audit.db import _MIGRATIONS, _VERSION_TABLE, _create_engine, default_home, default_url, open_database
from gateway.audit.models import Base
from gateway.errors import AuditError


def test_migrations_build_the_schema_the_models_describe(audit_url: str) -> None:
    db = open_database(audit_url)
    try:
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = [d for d in compare_metadata(context, Base.metadata)
                    if not (d[0] == "remove_table" and d[1].name == "modelgate_audit_version")]
            assert diff == []
            assert connection.execute(text("SELECT version_num FROM modelgate_audit_version")).scalar() == "0003"
        first = db.database_id
    finally:
        db.close()
    again = open_database(audit_url)  # upgrading an up-to-date database changes nothing
    assert again.database_id == first
    again.close()


def test_a_database_of_the_first_schema_upgrades_to_the_pin_and_held_call_tables_and_keeps_its_rows(
        audit_url: str) -> None:
    engine = _create_engine(audit_url, "FULL")
    with engine.begin() as connection:  # the schema as the first release left it
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.attributes.update(connection=connection, version_table=_VERSION_TABLE)
        command.upgrade(config, "0001")
        database_id = connection.execute(text("SELECT value FROM audit_meta WHERE key = 'database_id'")).scalar()
        connection.execute(text("INSERT INTO agents (name, profile, key_hash, key_prefix, created_at) VALUES "
                                "('old-bot', 'default', :h, 'mg_x', CURRENT_TIMESTAMP)"), {"h": "a" * 64})
    engine.dispose()
    db = open_database(audit_url)
    try:
        assert db.database_id == database_id
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM modelgate_audit_version")).scalar() == "0003"
            assert connection.execute(text("SELECT name FROM agents")).scalars().all() == ["old-bot"]
            assert connection.execute(text("SELECT count(*) FROM mcp_tool_pins")).scalar() == 0
            assert connection.execute(text("SELECT count(*) FROM held_calls")).scalar() == 0
    finally:
        db.close()


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
def test_sqlite_is_in_wal_mode_with_the_chosen_durability(tmp_path: Path, synchronous: str) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'a.db'}", synchronous=synchronous)  # type: ignore[arg-type]
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == {"FULL": 2, "NORMAL": 1}[synchronous]
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.close()


@pytest.mark.parametrize(("url", "message"), [
    ("not a url", "is not a database URL"),
    ("sqlite://", "must be a file"),
    ("sqlite:///:memory:", "must be a file"),
    ("postgresql+psycopg2://postgres@127.0.0.1/test", "psycopg driver"),
    ("mysql+pymysql://u@h/db", "unsupported audit database"),
])
def test_unusable_urls_are_refused_with_a_reason(url: str, message: str) -> None:
    with pytest.raises(AuditError, match=message):
        open_database(url)


def test_the_default_is_sqlite_in_modelgate_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELGATE_HOME", str(tmp_path / "mg"))
    assert default_home() == tmp_path / "mg"
    assert default_url() == f"sqlite:///{tmp_path / 'mg' / 'audit.db'}"
    open_database().close()
    assert (tmp_path / "mg" / "audit.db").exists()
    monkeypatch.delenv("MODELGATE_HOME")
    assert default_home() == Path.home() / ".modelgate"
