"""A real PostgreSQL for the tests: Debian's server in a temporary folder on a loopback port.

``initdb`` a cluster, ``pg_ctl start`` it on 127.0.0.1 (its socket in the same
folder, nothing under /var/run), one fresh database per test, ``pg_ctl stop``
and the folder removed at the end. PostgreSQL refuses to run as root: as root,
the cluster belongs to Debian's ``postgres`` user.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from provisioner import programs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """One running server; ``database()`` gives each caller a fresh, empty database."""

    def __init__(self, folder: Path, port: int, user: str | None) -> None:
        self.folder, self.port, self.user = folder, port, user
        self._count = itertools.count(1)

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._count)}"
        conninfo = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _run(argv: list[str], user: str | None) -> None:
    subprocess.run(programs.command(argv), check=True, user=user, capture_output=True, timeout=60)


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Start a PostgreSQL; stop it and remove its files when the block ends."""
    user = "postgres" if os.geteuid() == 0 else None
    # not under pytest's tmp folder: that is root's, mode 0700, closed to the postgres user
    folder = Path(tempfile.mkdtemp(prefix="provisioner-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    data = folder / "data"
    port = _free_port()
    pg_ctl = programs.path("pg_ctl")
    try:
        _run([programs.path("initdb"), "-D", str(data), "-U", "postgres",
              "--auth=trust", "-E", "UTF8", "--no-sync"], user)  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        _run([pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"),
              "-w", "-t", "30", "start"], user)  # fmt: skip
        try:
            yield PostgresCluster(folder, port, user)
        finally:
            _run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], user)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
