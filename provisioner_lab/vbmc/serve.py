"""Run virtual BMCs, each on its own UDP port, many to a process.

A process per BMC made 200 simulated BMCs take two minutes to start (each child
imports pyghmi and pydantic on 2 cores). Now one child process serves a group
of BMCs from a single thread (``ioloop.py``, which also explains why pyghmi's
own threading could not): the simulated and simulated-firmware BMCs are split
into at most one group per CPU (at most ``MAX_PER_PROCESS`` each), while each
qemu-backed BMC keeps a process of its own, so a node whose qemu is slow to
start or stop never holds up another node's BMC.

``serve_many`` starts ``python -m provisioner_lab.vbmc.serve`` once per group,
hands it the group's settings (passwords included) on stdin, never on the
command line, waits until every BMC reports READY, and stops them all on
SIGTERM/SIGINT.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr

from provisioner.errors import ProvisionerError
from provisioner_lab.vbmc.qemu import QemuSpec
from provisioner_lab.vbmc.simmachine import SimSpec

log = logging.getLogger(__name__)


class VbmcError(ProvisionerError):
    pass


class VbmcSpec(BaseModel):
    """One virtual BMC. Without ``qemu`` it is simulated (state only, no process)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    address: str = "127.0.0.1"
    port: int
    user: str
    password: SecretStr
    state_dir: Path
    qemu: QemuSpec | None = None
    sim: SimSpec | None = None  # simulated firmware + installer (no VM)
    keep_node_on_exit: bool = False

    @property
    def state_path(self) -> Path:
        return self.state_dir / f"{self.name}.json"

    def child_payload(self) -> str:
        data = self.model_dump(mode="json")
        data["password"] = self.password.get_secret_value()
        return json.dumps(data)


#: BMCs one process serves at most (each holds a socket; the default fd limit is 1,024)
MAX_PER_PROCESS = 400
#: fewer BMCs than this share one process even on many CPUs
MIN_PER_PROCESS = 32


def run_group(
    specs: Sequence[VbmcSpec], ready: Callable[[VbmcSpec], None], stop: threading.Event
) -> None:
    """Serve ``specs``' BMCs in this process, from one thread, until ``stop`` is set."""
    from provisioner.power import pyghmi_fixes
    from provisioner_lab.vbmc import ioloop
    from provisioner_lab.vbmc.bmc import VirtualBmc
    from provisioner_lab.vbmc.node import VirtualNode

    pyghmi_fixes.apply(server=True)
    ioloop.prepare()
    served: list[tuple[VbmcSpec, VirtualNode]] = []
    bmcs = []
    try:
        for spec in specs:
            node = VirtualNode(spec.name, spec.state_path, spec.qemu, spec.state_dir, spec.sim)
            served.append((spec, node))
            try:
                bmc = VirtualBmc(
                    node, spec.user, spec.password.get_secret_value(), spec.address, spec.port
                )
            except OSError as exc:
                raise VbmcError(
                    f"virtual BMC {spec.name}: cannot listen on {spec.address}:{spec.port}: {exc}"
                ) from exc
            bmcs.append(bmc)
            node.restore()
            log.info(
                "node %s: virtual BMC on %s:%d (%s)",
                spec.name,
                spec.address,
                spec.port,
                "simulated" if node.simulated else "qemu",
            )
            ready(spec)
        ioloop.run(bmcs, stop)
    finally:
        for spec, node in served:
            node.close(stop_node=not spec.keep_node_on_exit)


def _child_main() -> None:
    """Entry of one BMC process: a JSON list of settings on stdin, READY lines on stdout."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    raw = json.loads(sys.stdin.read())
    specs = [VbmcSpec.model_validate(item) for item in raw]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def ready(spec: VbmcSpec) -> None:
        sys.stdout.write(f"READY {spec.name} {spec.address}:{spec.port}\n")
        sys.stdout.flush()

    try:
        run_group(specs, ready, stop)
    except ProvisionerError as exc:
        sys.stdout.write(f"ERROR {exc}\n")
        sys.stdout.flush()
        sys.exit(1)


def groups(specs: Sequence[VbmcSpec], cpus: int | None = None) -> list[list[VbmcSpec]]:
    """Which BMCs share a process: each qemu-backed one alone; the others split
    evenly over at most one process per CPU, ``MAX_PER_PROCESS`` at most each."""
    alone = [[s] for s in specs if s.qemu is not None]
    shared = [s for s in specs if s.qemu is None]
    if not shared:
        return alone
    cpus = cpus or os.cpu_count() or 1
    count = max(
        -(-len(shared) // MAX_PER_PROCESS),
        min(cpus, -(-len(shared) // MIN_PER_PROCESS)),
    )
    size = -(-len(shared) // count)
    return [shared[i : i + size] for i in range(0, len(shared), size)] + alone


@dataclass
class Child:
    """One BMC and the process serving it (shared by the BMCs of its group)."""

    spec: VbmcSpec
    proc: subprocess.Popen[str]


def _log_path(group: Sequence[VbmcSpec]) -> Path:
    first = group[0]
    name = first.name if len(group) == 1 else f"{first.name}+{len(group) - 1}"
    return first.state_dir / f"{name}.vbmc.log"


def start_children(specs: Sequence[VbmcSpec], timeout: float = 60.0) -> list[Child]:
    """Start the BMC processes (``groups``) and wait until every BMC listens (or
    raise, stopping them). One Child per spec, in the order given."""
    children: dict[str, Child] = {}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")]
    )
    procs: list[tuple[subprocess.Popen[str], list[VbmcSpec]]] = []
    try:
        for group in groups(specs):
            for spec in group:
                spec.state_dir.mkdir(parents=True, exist_ok=True)
            log_file = _log_path(group).open("ab")
            proc = subprocess.Popen(
                [sys.executable, "-m", "provisioner_lab.vbmc.serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
                env=env,
            )
            log_file.close()
            procs.append((proc, group))
            for spec in group:
                children[spec.name] = Child(spec, proc)
            assert proc.stdin is not None
            proc.stdin.write("[" + ",".join(s.child_payload() for s in group) + "]")
            proc.stdin.close()
        _wait_ready(procs, timeout)
    except BaseException:
        stop_children(list(children.values()))
        raise
    return [children[s.name] for s in specs]


def _wait_ready(
    procs: Sequence[tuple[subprocess.Popen[str], list[VbmcSpec]]], timeout: float
) -> None:
    """Read READY lines (raw reads: a group writes many lines at once, and lines
    buffered in a text stream would not wake select again)."""
    deadline = time.monotonic() + timeout
    waiting: dict[int, dict[str, VbmcSpec]] = {}
    logs: dict[int, Path] = {}
    buffers: dict[int, bytes] = {}
    for proc, group in procs:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        waiting[fd] = {s.name: s for s in group}
        logs[fd], buffers[fd] = _log_path(group), b""
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            names = sorted(n for group in waiting.values() for n in group)
            more = f" and {len(names) - 10} more" if len(names) > 10 else ""
            raise VbmcError(
                f"virtual BMC(s) {', '.join(names[:10])}{more}: not ready within {timeout:g}s"
            )
        readable, _, _ = select.select(list(waiting), [], [], left)
        for fd in readable:
            chunk = os.read(fd, 65536)
            pending = waiting[fd]
            if not chunk:
                raise VbmcError(
                    f"virtual BMC {next(iter(pending))}: exited before listening; see {logs[fd]}"
                )
            *lines, buffers[fd] = (buffers[fd] + chunk).split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").strip()
                if line.startswith("ERROR "):
                    raise VbmcError(line.removeprefix("ERROR "))
                words = line.split()
                if len(words) > 1 and words[0] == "READY":
                    pending.pop(words[1], None)
            if not pending:
                del waiting[fd]


def stop_children(children: Sequence[Child], timeout: float = 15.0) -> None:
    procs = list({id(c.proc): c.proc for c in children}.values())
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve_many(specs: Sequence[VbmcSpec], on_ready: Callable[[], None] | None = None) -> int:
    """Run until SIGTERM/SIGINT or a child dies; returns an exit code."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    children = start_children(specs)
    try:
        if on_ready:
            on_ready()
        while not stop.wait(0.5):
            dead = [c for c in children if c.proc.poll() is not None]  # a group: all its BMCs
            if dead:
                names = ", ".join(c.spec.name for c in dead)
                log.error("virtual BMC(s) %s exited; stopping the others", names)
                return 1
        return 0
    finally:
        stop_children(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    _child_main()
