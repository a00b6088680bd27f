"""The store's suite runs on both backends: SQLite (a state directory) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from provisioner.state import schema
from provisioner.state.store import Store, sqlite_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.functional)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An upgraded, empty store database: a SQLite state directory or a PostgreSQL database."""
    if request.param == "sqlite":
        Store.open(tmp_path / "state").close()
        return sqlite_url(tmp_path / "state")
    url: str = request.getfixturevalue("postgres").database()
    engine = create_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def open_store(db_url: str) -> Iterator[Callable[..., Store]]:
    """Opens more stores on the same database (another process's view); closes them after."""
    opened: list[Store] = []

    def make(**kwargs: Any) -> Store:
        opened.append(Store(db_url, **kwargs))
        return opened[-1]

    yield make
    for s in opened:
        s.close()
