"""The generated Galera configuration, run for real: three MariaDB nodes in three network
namespaces. The first deployment bootstraps on the node the bundle says; the others join.
A reprovisioned controller (empty disk) starts the way its new bundle says: it joins the
running cluster (state transfer from a member) instead of starting a second cluster."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.inventory import Site
from provisioner.roles import DeployFacts, generate
from tests.functional.roles.conftest import bridge_lab, needs_root, run, wait_for
from tests.functional.roles.daemons import stop

pytestmark = [pytest.mark.functional, needs_root]
CONTROLLERS = ["ctl1", "ctl2", "ctl3"]
JOIN_TIMEOUT_S = 90.0


class Member:
    def __init__(self, node: str, ns: str, root: Path) -> None:
        self.node, self.ns, self.root = node, ns, root
        self.datadir = root / "data"
        self.socket = root / "mysqld.sock"

    def configure(self, bundle: dict[str, str]) -> bool:
        """Install the bundle's galera.cnf; returns whether the bundle says bootstrap."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "galera.cnf").write_text(bundle["mysql/galera.cnf"])
        # what differs on a real node (paths, user) stays out of the generated file
        (self.root / "my.cnf").write_text(
            f"[mysqld]\ndatadir = {self.datadir}\nsocket = {self.socket}\n"
            f"pid-file = {self.root / 'mysqld.pid'}\nlog-error = {self.root / 'error.log'}\n"
            "user = mysql\nskip-name-resolve\ninnodb_buffer_pool_size = 16M\n"
            "performance_schema = OFF\n"
            f"!include {self.root / 'galera.cnf'}\n"
        )
        decision = json.loads(bundle["galera/decision.json"])
        return bool(decision["bootstrap"])

    def wipe(self) -> None:
        """An empty disk, as after a (re)install: a fresh datadir owned by mysql."""
        run(["rm", "-rf", str(self.datadir)])
        self.datadir.mkdir()
        run(["chown", "-R", "mysql:mysql", str(self.root)])
        run(
            [
                "mariadb-install-db",
                f"--defaults-file={self.root / 'my.cnf'}",
                "--user=mysql",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            timeout=180,
        )

    @contextmanager
    def running(self, bootstrap: bool) -> Iterator[subprocess.Popen[bytes]]:
        cmd = [
            "ip",
            "netns",
            "exec",
            self.ns,
            "mariadbd",
            f"--defaults-file={self.root / 'my.cnf'}",
        ]
        if bootstrap:
            cmd.append("--wsrep-new-cluster")
        proc = subprocess.Popen(
            programs.command(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            yield proc
        finally:
            stop(proc, grace=60)

    def status(self, name: str) -> str | None:
        result = subprocess.run(
            [
                programs.path("mariadb"),
                "-S",
                str(self.socket),
                "-uroot",
                "-N",
                "-B",
                "-e",
                f"SHOW GLOBAL STATUS LIKE '{name}'",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if result.returncode != 0 or not result.stdout.strip():
            return None
        return result.stdout.split()[1]

    def query(self, sql: str) -> str:
        return run(["mariadb", "-S", str(self.socket), "-uroot", "-N", "-B", "-e", sql]).stdout

    def synced_in(self, size: int) -> bool:
        return self.status("wsrep_local_state_comment") == "Synced" and self.status(
            "wsrep_cluster_size"
        ) == str(size)

    def log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@pytest.fixture
def galera_dir() -> Iterator[Path]:
    """Where the members' data lives: readable by the mysql user (the server drops to it,
    and so does the rsync state transfer), unlike pytest's private temp folders."""
    path = Path(tempfile.mkdtemp(prefix="pv7-galera-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_first_deployment_bootstraps_once_and_a_reprovisioned_member_rejoins(
    lab_site: Site, galera_dir: Path
) -> None:
    tmp_path = galera_dir
    with ExitStack() as stack:
        spaces = bridge_lab(lab_site, CONTROLLERS, stack)
        members = {n: Member(n, spaces[n], tmp_path / n) for n in CONTROLLERS}

        # first deployment: every controller is new; the bundles pick one bootstrapper
        plan = {n: m.configure(generate(lab_site, n, DeployFacts())) for n, m in members.items()}
        assert plan == {"ctl1": True, "ctl2": False, "ctl3": False}
        for m in members.values():
            m.wipe()
        procs = {}
        for n in CONTROLLERS:
            procs[n] = stack.enter_context(members[n].running(bootstrap=plan[n]))
            wait_for(
                lambda n=n: members[n].synced_in(CONTROLLERS.index(n) + 1),  # type: ignore[misc]
                JOIN_TIMEOUT_S,
                lambda n=n: f"{n} synced\n{members[n].log()}",
            )
        members["ctl2"].query("CREATE DATABASE keystone")

        # ctl1 dies and is reprovisioned: new disk, new bundle from the store's facts
        procs["ctl1"].send_signal(signal.SIGKILL)
        procs["ctl1"].wait(timeout=30)
        wait_for(
            lambda: members["ctl2"].status("wsrep_cluster_size") == "2",
            JOIN_TIMEOUT_S,
            "cluster shrank to 2",
        )
        facts = DeployFacts(first_deployment=False, running_members=("ctl2", "ctl3"))
        bootstrap = members["ctl1"].configure(generate(lab_site, "ctl1", facts))
        assert bootstrap is False
        members["ctl1"].wipe()
        stack.enter_context(members["ctl1"].running(bootstrap=bootstrap))
        wait_for(
            lambda: members["ctl1"].synced_in(3),
            JOIN_TIMEOUT_S,
            lambda: f"ctl1 rejoined\n{members['ctl1'].log()}",
        )
        # one cluster, not two: ctl1 received the data written while it was away
        assert "keystone" in members["ctl1"].query("SHOW DATABASES").split()
        uuids = {members[n].status("wsrep_cluster_state_uuid") for n in CONTROLLERS}
        assert len(uuids) == 1
