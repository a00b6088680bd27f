from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.example_secrets import seed_example_secrets

# Every program a test starts must be in provisioner/programs.py (see program_audit.py).
pytest_plugins = ["tests.program_audit"]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_SITE = REPO / "examples" / "site.yaml"


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """A private copy of the example site, with fixed test secrets (mode 0600) in place of
    the ones it would generate on first use: tests compare against known values."""
    shutil.copy(EXAMPLE_SITE, tmp_path / "site.yaml")
    shutil.copytree(REPO / "examples" / "secrets", tmp_path / "secrets")
    seed_example_secrets(tmp_path / "secrets")
    return tmp_path


@pytest.fixture
def example_text() -> str:
    return EXAMPLE_SITE.read_text()


# --- The suite writes only into its temporary directories (issue 13) --------------------------
#
# A CLI run without --state-dir would write the default state dir
# (/var/lib/provisioner as root): for the session the default points into pytest's
# tmp dir, and anything that lands there fails the run. So does any change in the
# checkout or in the real default state dir, found by comparing snapshots.

#: Folders of the checkout that are no test's business: tool caches, the demo lab's running state.
_UNWATCHED = {".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".demo"}


def _snapshot(top: Path) -> dict[str, tuple[int, int]]:
    """Every file, link and folder under ``top`` with its size and mtime (no virtualenvs)."""
    found: dict[str, tuple[int, int]] = {".": (0, 0)} if top.exists() else {}
    for root, dirs, files in os.walk(top):
        dirs[:] = [
            d for d in dirs if d not in _UNWATCHED and not (Path(root, d, "pyvenv.cfg")).exists()
        ]
        for name in dirs:  # a folder counts by being there: its mtime moves with __pycache__
            found[str(Path(root, name).relative_to(top))] = (0, 0)
        for name in files:
            path = Path(root, name)
            with contextlib.suppress(OSError):
                st = path.lstat()
                found[str(path.relative_to(top))] = (st.st_size, st.st_mtime_ns)
    return found


def _changes(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    added = [f"+ {p}" for p in sorted(after.keys() - before.keys())]
    removed = [f"- {p}" for p in sorted(before.keys() - after.keys())]
    changed = [f"~ {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]]
    return added + removed + changed


@pytest.fixture(scope="session", autouse=True)
def _hypothesis_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Hypothesis keeps its example database and caches in tmp, not in the checkout."""
    try:
        from hypothesis.configuration import set_hypothesis_home_dir
    except ImportError:  # hypothesis is in the test extra; without it no test uses it
        return
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))


@pytest.fixture(scope="session", autouse=True)
def _writes_stay_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point the default state dir at tmp; fail the session if it, the checkout or
    the real default state dir were written."""
    from provisioner.settings import default_state_dir

    real_state = [default_state_dir()]
    if os.environ.get("PROVISIONER_STATE_DIR"):
        real_state.append(Path(os.environ["PROVISIONER_STATE_DIR"]))
    net = tmp_path_factory.mktemp("default-state")
    redirect = {"PROVISIONER_STATE_DIR": str(net / "state"), "XDG_STATE_HOME": str(net / "xdg")}
    saved = {name: os.environ.get(name) for name in redirect}
    watched = [REPO, *real_state]
    before = [_snapshot(top) for top in watched]
    os.environ.update(redirect)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    problems = [
        f"{top}: {change}"
        for top, old in zip(watched, before, strict=True)
        for change in _changes(old, _snapshot(top))
    ]
    problems += [
        f"the default state dir (a CLI run without --state-dir): + {path.relative_to(net)}"
        for path in sorted(net.rglob("*"))
        if not path.is_dir()
    ]
    assert not problems, "the tests wrote outside their temporary directories:\n" + "\n".join(
        problems[:30]
    )


# --- Timing summary at the end of the run (issue 13) -------------------------------------------
#
# Wall time of the session and, per test folder, how many tests ran, the seconds
# they took (setup + call + teardown) and the slowest five: where the time goes.

_SESSION_START = time.monotonic()
_DURATIONS: dict[str, float] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    global _SESSION_START
    _SESSION_START = time.monotonic()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _DURATIONS[report.nodeid] = _DURATIONS.get(report.nodeid, 0.0) + report.duration


def _group(nodeid: str) -> str:
    """``tests/unit/power/test_x.py::t`` -> ``tests/unit``."""
    parts = nodeid.split("::", 1)[0].split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any) -> Generator[None, None, None]:
    """Printed after pytest's own summary sections, so the log ends with it."""
    yield
    if _DURATIONS:
        _print_timing(terminalreporter)


def _print_timing(terminalreporter: Any) -> None:
    wall = time.monotonic() - _SESSION_START
    groups: dict[str, list[tuple[float, str]]] = {}
    for nodeid, seconds in _DURATIONS.items():
        groups.setdefault(_group(nodeid), []).append((seconds, nodeid))
    write = terminalreporter.write_line
    minutes, rest = divmod(round(wall), 60)
    terminalreporter.write_sep(
        "=", f"timing: {_tests(len(_DURATIONS))}, wall {wall:.1f} s ({minutes} min {rest:02d} s)"
    )
    for name, tests in sorted(groups.items()):
        write(f"{name}: {_tests(len(tests))}, {sum(s for s, _ in tests):.1f} s")
        for seconds, nodeid in sorted(tests, reverse=True)[:5]:
            write(f"  {seconds:8.2f} s  {nodeid}")


def _tests(count: int) -> str:
    return f"{count} test" if count == 1 else f"{count} tests"


# --- A real PostgreSQL for the state store's shared suite (issue 22) ----------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """One PostgreSQL server for the session (about 2 s to start); a database per test."""
    from tests.postgres import postgres_cluster

    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.functional)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An upgraded, empty store database: a SQLite state directory or a PostgreSQL database.
    The tests that take it run on both (the store's suite, takeover)."""
    from sqlalchemy import create_engine

    from provisioner.state import schema
    from provisioner.state.store import Store, sqlite_url

    if request.param == "sqlite":
        Store.open(tmp_path / "state").close()
        return sqlite_url(tmp_path / "state")
    url: str = request.getfixturevalue("postgres").database()
    engine = create_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def open_store(db_url: str) -> Iterator[Callable[..., Any]]:
    """Opens more stores on the same database (another process's view); closes them after."""
    from provisioner.state.store import Store

    opened: list[Store] = []

    def make(**kwargs: Any) -> Store:
        opened.append(Store(db_url, **kwargs))
        return opened[-1]

    yield make
    for s in opened:
        s.close()
