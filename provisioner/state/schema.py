"""The state store's schema, kept by Alembic revisions (state/migrations/versions).

``upgrade`` brings a database to the newest revision in one transaction, under
a lock, so two processes upgrading at once run the revisions once: SQLite's
write lock (BEGIN IMMEDIATE), a PostgreSQL advisory lock. A SQLite state
directory upgrades itself when the store opens it (one host, one file); a
shared PostgreSQL database is upgraded on purpose (``provisioner db upgrade``)
and a store refuses to run on an older schema than its code.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from provisioner.errors import StateDatabaseUnreachable

#: Any fixed number: the key of the PostgreSQL advisory lock upgrades take.
_UPGRADE_LOCK = 0x70726F76  # "prov"
#: What ``Store`` passes so SQLite's BEGIN is IMMEDIATE (store._sqlite_begin).
WRITE_TX = "provisioner_write_tx"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head() -> str:
    """The newest revision this code knows."""
    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found is not None
    return found


def current(engine: Engine) -> str | None:
    """The database's revision; None for an empty database or one made before Alembic."""
    with _reachable(engine), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _reachable(engine: Engine) -> Iterator[None]:
    """A database that cannot be reached is the operator's problem to fix, not a bug."""
    try:
        yield
    except OperationalError as exc:
        where = engine.url.render_as_string(hide_password=True)
        why = str(exc.orig or exc).strip().splitlines()[0]
        raise StateDatabaseUnreachable(where, why) from exc


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Upgrade to the newest revision; returns (revision before, revision after)."""
    with (
        _reachable(engine),
        engine.connect().execution_options(**{WRITE_TX: True}) as conn,
        conn.begin(),
    ):
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
        before = MigrationContext.configure(conn).get_current_revision()
        if before != head():
            command.upgrade(_config(conn), "head")
    return before, head()
