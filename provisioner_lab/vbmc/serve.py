"""Run virtual BMCs: one per process (pyghmi's server is not safe with many BMCs
and many clients in one process), each on its own UDP port.

``serve_many`` starts ``python -m provisioner_lab.vbmc.serve`` once per BMC,
hands each its settings (password included) on stdin, never on the command line,
waits until every child reports READY, and stops them all on SIGTERM/SIGINT.
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


def run_one(spec: VbmcSpec, ready: Callable[[], None], stop: threading.Event) -> None:
    """Serve one BMC in this process until ``stop`` is set."""
    from pyghmi.ipmi.private import session

    from provisioner.power import pyghmi_fixes
    from provisioner_lab.vbmc.bmc import VirtualBmc
    from provisioner_lab.vbmc.node import VirtualNode

    pyghmi_fixes.apply(server=True)
    node = VirtualNode(spec.name, spec.state_path, spec.qemu, spec.state_dir, spec.sim)
    try:
        bmc = VirtualBmc(node, spec.user, spec.password.get_secret_value(), spec.address, spec.port)
    except OSError as exc:
        raise VbmcError(
            f"virtual BMC {spec.name}: cannot listen on {spec.address}:{spec.port}: {exc}"
        ) from exc
    node.restore()
    log.info(
        "node %s: virtual BMC on %s:%d (%s)",
        spec.name,
        spec.address,
        spec.port,
        "simulated" if node.simulated else "qemu",
    )
    assert bmc is not None
    ready()
    try:
        while not stop.is_set():
            session.Session.wait_for_rsp(timeout=0.5)
    finally:
        node.close(stop_node=not spec.keep_node_on_exit)


def _child_main() -> None:
    """Entry of one BMC process: settings on stdin, READY on stdout."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    spec = VbmcSpec.model_validate_json(sys.stdin.read())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def ready() -> None:
        sys.stdout.write(f"READY {spec.name} {spec.address}:{spec.port}\n")
        sys.stdout.flush()

    try:
        run_one(spec, ready, stop)
    except ProvisionerError as exc:
        sys.stdout.write(f"ERROR {exc}\n")
        sys.stdout.flush()
        sys.exit(1)


@dataclass
class Child:
    spec: VbmcSpec
    proc: subprocess.Popen[str]


def start_children(specs: Sequence[VbmcSpec], timeout: float = 60.0) -> list[Child]:
    """Start one process per BMC and wait until all listen (or raise, stopping them)."""
    children: list[Child] = []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")]
    )
    try:
        for spec in specs:
            spec.state_dir.mkdir(parents=True, exist_ok=True)
            log_file = (spec.state_dir / f"{spec.name}.vbmc.log").open("ab")
            proc = subprocess.Popen(
                [sys.executable, "-m", "provisioner_lab.vbmc.serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
                env=env,
            )
            log_file.close()
            assert proc.stdin is not None
            proc.stdin.write(spec.child_payload())
            proc.stdin.close()
            children.append(Child(spec, proc))
        _wait_ready(children, timeout)
    except BaseException:
        stop_children(children)
        raise
    return children


def _wait_ready(children: list[Child], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = {c.proc.stdout: c for c in children if c.proc.stdout is not None}
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            names = ", ".join(sorted(c.spec.name for c in pending.values()))
            raise VbmcError(f"virtual BMC(s) {names}: not ready within {timeout:g}s")
        readable, _, _ = select.select(list(pending), [], [], left)
        for stream in readable:
            child = pending.pop(stream)
            line = stream.readline().strip()
            if line.startswith("ERROR "):
                raise VbmcError(line.removeprefix("ERROR "))
            if not line.startswith("READY"):
                raise VbmcError(
                    f"virtual BMC {child.spec.name}: exited before listening; "
                    f"see {child.spec.state_dir / (child.spec.name + '.vbmc.log')}"
                )


def stop_children(children: Sequence[Child], timeout: float = 15.0) -> None:
    for child in children:
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()


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
            dead = [c for c in children if c.proc.poll() is not None]
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
