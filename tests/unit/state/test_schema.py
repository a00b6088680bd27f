"""The store's schema under Alembic: upgrades in place, the same schema on both backends."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from provisioner.errors import SchemaOutdated
from provisioner.state import schema
from provisioner.state.discovered import Discoveries
from provisioner.state.machine import NodeState
from provisioner.state.store import Base, Store

#: A state directory's database as provisioner made it before Alembic (main at 83cfe58):
#: ctl1 provisioning with a reservation and 4 events, cmp1 enrolled, one discovered machine.
BEFORE_MIGRATIONS = Path(__file__).parents[2] / "data" / "state_before_migrations.sql"


def provisioner(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "provisioner", "--state-dir", str(state), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)


def test_a_state_dir_from_before_migrations_upgrades_in_place(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    db = sqlite3.connect(state / "provisioner.db")
    db.executescript(BEFORE_MIGRATIONS.read_text())
    db.close()
    status = json.loads(provisioner(state, "db", "status", "--json").stdout)
    assert (status["revision"], status["head"]) == (None, schema.head())

    done = json.loads(provisioner(state, "db", "upgrade", "--json").stdout)
    assert (done["before"], done["after"]) == (None, schema.head())

    store = Store.open(state)
    assert store.get("ctl1").state is NodeState.PROVISIONING
    assert store.get("ctl1").step == "dns"
    assert [e.event for e in store.events("ctl1")] == ["enroll", "manage", "provision", "cycle"]
    held = store.reservation("ctl1")
    assert held is not None and (held.owner, held.server) == ("daemon", None)
    assert Discoveries(store).get("52:54:00:aa:bb:cc") is not None
    # the old triggers still guard the log, and new events continue its numbering
    db = sqlite3.connect(state / "provisioner.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM events")
    db.close()
    assert store.add_event("cmp1", "after the upgrade") == 6
    store.close()


def test_opening_an_old_sqlite_state_dir_upgrades_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    db = sqlite3.connect(state / "provisioner.db")
    db.executescript(BEFORE_MIGRATIONS.read_text())
    db.close()
    store = Store.open(state)
    assert schema.current(store.engine) == schema.head()
    assert [r.name for r in store.all()] == ["cmp1", "ctl1"]
    store.close()


def test_the_revisions_make_the_models_schema(db_url: str) -> None:
    """Nothing the models declare is missing from (or different in) the migrated database."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


@pytest.mark.functional
def test_a_shared_database_behind_the_code_is_refused(postgres: object) -> None:
    url = postgres.database()  # type: ignore[attr-defined]
    with pytest.raises(SchemaOutdated, match="run 'provisioner db upgrade"):
        Store(url)
    engine = create_engine(url)
    assert schema.upgrade(engine) == (None, schema.head())
    assert schema.upgrade(engine) == (schema.head(), schema.head())
    engine.dispose()
    Store(url).close()


def test_an_unreachable_database_is_an_operator_error_without_its_password() -> None:
    from provisioner.errors import StateDatabaseUnreachable

    with pytest.raises(StateDatabaseUnreachable) as caught:
        Store("postgresql+psycopg://prov:hunter2@127.0.0.1:1/provisioner")
    assert "state database postgresql+psycopg://prov:***@127.0.0.1:1/provisioner" in str(
        caught.value
    )
    assert "hunter2" not in str(caught.value)
