"""A simulated site for the Pipeline's unit tests: fake clock, fake backends, real HTTP routes.

The pipeline under test is the real one, over a real SQLite store. Its edges are
fake: ``FakeBackends`` records every DNS, DHCP and BMC call; time is a number that
only the pipeline's own ``sleep`` moves. Each simulated machine acts when that
clock reaches its next action, through the boot server's real Flask app (its
test client, no socket): after a power cycle its firmware fetches
/boot/<mac>.ipxe, the installer fetches the kickstart URL found in that script,
and %post POSTs to the callback URL found in the kickstart, with the token found
there. So the tests depend on the HTTP contract only, not on how the routes
record what happened.

A crash of the pipeline's process is an exception that is not an ``Exception``
(``Crash``): it unwinds through the pipeline's own error handling, as dying does,
and a new Pipeline on a new Store on the same database file takes over.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from flask.testing import FlaskClient

from provisioner.inventory import Site
from provisioner.inventory.models import ImageSource
from provisioner.pipeline.fakes import Call, FakeBackends
from provisioner.pipeline.runner import Pipeline, Timeouts
from provisioner.state.store import Store

NODE = "ctl1"
MAC = "52:54:00:00:02:0b"
KERNEL = "6.1.0-28-cloud-amd64"  # what a simulated installed system reports running
#: what every deployment of ctl1 calls, in order, when nothing goes wrong
HAPPY_CALLS = [
    "publish_dns ctl1",
    "add_dhcp_host ctl1",
    "set_boot_device ctl1 network once",
    "power_cycle ctl1",
    "set_boot_device ctl1 disk persistent",
]
#: the site's hooks for controllers (plus the bundled common/10-record-context)
HOOKS = {
    "10-first": "#!/bin/sh\necho first hook on $PROVISIONER_NODE\n",
    "20-second": "#!/bin/sh\necho second hook\n",
    "30-third": "#!/bin/sh\necho third hook\n",
}
TIMEOUTS = Timeouts(
    boot_script=120, kickstart=120, installed=900, booted=600, active=120, applied=900, poll=5
)
#: what a simulated installed system reports once it applied its bundle
APPLIED: dict[str, Any] = {
    "status": "applied",
    "services": [
        {"name": "files", "result": "ok", "seconds": 1, "detail": "12 files in /etc"},
        {"name": "galera", "result": "ok", "seconds": 41, "detail": "wsrep_cluster_size=1"},
    ],
}


class Crash(BaseException):
    """The pipeline's process dies here (not an Exception: nothing in it catches this)."""


@dataclass
class Machine:
    """How one simulated node behaves (times in simulated seconds)."""

    boots_on_cycle: int | None = 1  # the power cycle whose network boot works; None: never
    fetches_kickstart: bool = True
    outcome: Literal["installed", "failed"] | None = "installed"  # None: never calls back
    message: str = ""
    boot_delay: float = 20.0  # power cycle -> boot script fetch
    kickstart_delay: float = 30.0  # boot script -> kickstart fetch
    install_time: float = 300.0  # kickstart -> callback
    #: image installs: installed callback -> the installed system's "booted" (None: never)
    first_boot: float | None = None
    #: image installs: "booted" -> the apply unit's report (None: never reports)
    applies: float | None = 120.0
    apply_report: dict[str, Any] = field(default_factory=lambda: dict(APPLIED))
    cycles: int = 0
    ks_path: str | None = None
    callback_path: str | None = None
    token: str | None = None


@dataclass
class World:
    """The clock, the machines, the boot server's HTTP app; the pipeline's sleep runs it."""

    client: FlaskClient
    web_store: Store  # the boot server's own connection, as in its own process
    site: Site
    machines: dict[str, Machine] = field(default_factory=dict)
    now: float = 0.0
    pending: list[tuple[float, str, str]] = field(default_factory=list)
    responses: list[tuple[str, int]] = field(default_factory=list)  # (what, HTTP status)
    #: checked after each simulated second's actions; returns True to crash the pipeline
    crash_when: Callable[[World], bool] | None = None

    # ---- the pipeline's clock and sleep ----------------------------------------
    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        while True:
            due = sorted(p for p in self.pending if p[0] <= self.now)
            if not due:
                break
            self.pending.remove(due[0])
            _, node, action = due[0]
            getattr(self, f"_{action}")(node)
        if self.crash_when is not None and self.crash_when(self):
            self.crash_when = None
            raise Crash(f"crash at simulated t={self.now:g}s")

    # ---- the backends' listener: the hardware reacts ----------------------------
    def hear(self, call: Call) -> None:
        machine = self.machines.setdefault(call.node, Machine())
        if call.action in ("power_cycle", "power_off"):
            self.pending = [p for p in self.pending if p[1] != call.node]  # reset
        if call.action == "power_cycle":
            machine.cycles += 1
            if machine.boots_on_cycle is not None and machine.cycles >= machine.boots_on_cycle:
                self._later(machine.boot_delay, call.node, "boot")

    def _later(self, delay: float, node: str, action: str) -> None:
        self.pending.append((self.now + delay, node, action))

    # ---- what a machine does over HTTP ---------------------------------------------
    def _boot(self, node: str) -> None:
        machine = self.machines[node]
        mac = self.site.node(node).macs[0]
        script = self._get(f"boot {node}", f"/boot/{mac}.ipxe", node)
        found = re.search(r"(/ks/[^\s]+)", script)
        if found and machine.fetches_kickstart:
            machine.ks_path = found.group(1)
            self._later(machine.kickstart_delay, node, "kickstart")

    def _kickstart(self, node: str) -> None:
        machine = self.machines[node]
        assert machine.ks_path is not None
        text = self._get(f"kickstart {node}", machine.ks_path, node)
        token = re.search(r"^PROVISIONER_TOKEN=(\S+)$", text, re.M)
        url = re.search(r"^PROVISIONER_CALLBACK=https?://[^/]+(/\S+)$", text, re.M)
        if token and url and machine.outcome is not None:
            machine.token, machine.callback_path = token.group(1), url.group(1)
            self._later(machine.install_time, node, "callback")

    def _callback(self, node: str) -> None:
        machine = self.machines[node]
        status = self.post_callback(node, machine.outcome or "installed", machine.message)
        if status < 300 and machine.outcome == "installed" and machine.first_boot is not None:
            self._later(machine.first_boot, node, "first_boot")

    def _first_boot(self, node: str) -> None:
        """The installed system's first-boot unit (kickstart/snippets/firstboot-callback.j2)."""
        status = self.post_callback(node, "booted", kernel=KERNEL)
        machine = self.machines[node]
        if status < 300 and machine.applies is not None:
            self._later(machine.applies, node, "apply")

    def _apply(self, node: str) -> None:
        """The apply unit's report (it pulled and applied the bundle the hooks wrote)."""
        machine = self.machines[node]
        self.post_json(node, f"callback {node} {machine.apply_report['status']}",
                       machine.apply_report)  # fmt: skip

    def post_callback(self, node: str, status: str, message: str = "", kernel: str = "") -> int:
        body = {"status": status, "message": message} | ({"kernel": kernel} if kernel else {})
        return self.post_json(node, f"callback {node} {status}", body)

    def post_json(self, node: str, what: str, body: dict[str, Any]) -> int:
        machine = self.machines[node]
        assert machine.callback_path and machine.token
        before = self.web_store.last_event_id(node)
        response = self.client.post(
            machine.callback_path,
            json=body,
            headers={"Authorization": f"Bearer {machine.token}"},
        )
        self.responses.append((what, response.status_code))
        if response.status_code < 300:  # a refused request records nothing
            self._settle(node, before)
        return response.status_code

    def boot_script(self, node: str) -> str:
        """What the node's firmware gets now (without recording anything in the world)."""
        mac = self.site.node(node).macs[0]
        return self.client.get(f"/boot/{mac}.ipxe", environ_base=self._from(node)).get_data(
            as_text=True
        )

    def _from(self, node: str) -> dict[str, str]:
        """The node's requests come from its own address, as a real node's do."""
        return {"REMOTE_ADDR": str(self.site.node(node).ip)}

    def _get(self, what: str, path: str, node: str) -> str:
        before = self.web_store.last_event_id(node)
        response = self.client.get(path, environ_base=self._from(node))
        self.responses.append((what, response.status_code))
        if response.status_code < 300:
            self._settle(node, before)
        return response.get_data(as_text=True) if response.status_code == 200 else ""

    def _settle(self, node: str, before: int, wait: float = 5.0) -> None:
        """Let the boot server finish recording the request (its writes may be queued)
        before simulated time moves on: real time passes in the real world too."""
        deadline = time.monotonic() + wait
        while self.web_store.last_event_id(node) == before and time.monotonic() < deadline:
            time.sleep(0.005)


class CrashingStore(Store):
    """A Store whose process dies right after recording a chosen step of the node."""

    crash_at: Callable[[Store, str, str | None], bool] | None = None

    def set_step(self, name: str, step: str | None, actor: str = "") -> None:
        super().set_step(name, step, actor)
        if self.crash_at is not None and self.crash_at(self, name, step):
            self.crash_at = None
            raise Crash(f"crash after recording step {step!r}")


@dataclass
class Sim:
    site_dir: Path
    state_dir: Path
    site: Site
    world: World
    backends: FakeBackends
    store: CrashingStore
    stores: list[Store]

    def pipeline(self, **kwargs: Any) -> Pipeline:
        """The pipeline as the daemon wires it, over the simulated edges."""
        return Pipeline(
            self.store,
            lambda: self.site,
            self.backends,
            TIMEOUTS,
            clock=self.world.clock,
            sleep=self.world.sleep,
            **kwargs,
        )

    def installs_images(self) -> None:
        """The pipeline's site installs images (liveimg profiles), so it waits for each
        node's first-boot callback. The boot server keeps rendering the package kickstart:
        the machines here only need its token and callback URL."""
        profiles = {
            name: p.model_copy(update={"repo": None, "image": ImageSource()})
            for name, p in self.site.profiles.items()
        }
        self.site = self.site.model_copy(update={"profiles": profiles})

    def restart(self) -> Pipeline:
        """The daemon after a crash: a new Store connection, a new Pipeline."""
        self.store = CrashingStore.open(self.state_dir)
        self.stores.append(self.store)
        return self.pipeline()

    def machine(self, node: str = NODE, **behaviour: Any) -> Machine:
        self.world.machines[node] = Machine(**behaviour)
        return self.world.machines[node]

    def write_hook(self, name: str, text: str) -> None:
        """Replace (or add) one of the controllers' site hooks."""
        path = self.site_dir / "hooks" / "unit" / name
        path.write_text(text)
        path.chmod(0o755)

    def events(self, node: str = NODE) -> list[str]:
        return [e.message for e in self.store.events(node)]

    def hook_runs(self, node: str = NODE) -> list[str]:
        """The hooks that ran, in order, from the node's event log ("unit/10-first exited 0")."""
        return [
            m.split("\n")[0].removeprefix("hook ")
            for m in self.events(node)
            if m.startswith("hook ") and " exited " in m.split("\n")[0]
        ]


def write_site(site_dir: Path, hooks: dict[str, str]) -> None:
    """The example site with fake BMCs and its own hook folder for controllers."""
    path = site_dir / "site.yaml"
    data = yaml.safe_load(path.read_text())
    for node in data["nodes"]:
        node["bmc"]["driver"] = "fake"
    data["content"] = {"hooks": "hooks"}
    data["roles"]["controller"]["hooks"] = ["unit"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    folder = site_dir / "hooks" / "unit"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in hooks.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
