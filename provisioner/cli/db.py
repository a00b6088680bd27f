"""`provisioner db`: the state database's schema (Alembic revisions, state/schema.py)."""

from __future__ import annotations

import click
from sqlalchemy.engine import make_url

from provisioner.cli.context import App
from provisioner.cli.output import console, print_json
from provisioner.state import schema
from provisioner.state.store import make_engine, store_url

pass_app = click.make_pass_decorator(App)


def _url(app: App) -> str:
    return store_url(app.settings.state_dir, app.settings.db_url)


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@click.group()
def db() -> None:
    """The state database: its schema revision and upgrades."""


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def upgrade(app: App, as_json: bool) -> None:
    """Bring the schema to this version's newest revision (in place, rows kept).

    A SQLite state directory also upgrades itself when opened; a shared
    PostgreSQL database is upgraded here, once, before the new servers start.
    """
    url = _url(app)
    engine = make_engine(url)
    try:
        before, after = schema.upgrade(engine)
    finally:
        engine.dispose()
    if as_json:
        print_json({"database": _shown(url), "before": before, "after": after})
    elif before == after:
        console().print(f"{_shown(url)}: schema already at revision {after}", markup=False)
    else:
        console().print(
            f"{_shown(url)}: schema upgraded from {before or 'none'} to {after}", markup=False
        )


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def status(app: App, as_json: bool) -> None:
    """The database's schema revision and the one this version needs."""
    url = _url(app)
    engine = make_engine(url)
    try:
        found = schema.current(engine)
    finally:
        engine.dispose()
    wanted = schema.head()
    if as_json:
        print_json({"database": _shown(url), "revision": found, "head": wanted})
    else:
        state = "up to date" if found == wanted else "needs 'provisioner db upgrade'"
        console().print(
            f"{_shown(url)}: revision {found or 'none'} (this version: {wanted}): {state}",
            markup=False,
        )


COMMANDS = [db]
