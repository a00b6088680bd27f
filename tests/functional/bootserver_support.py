"""Shared pieces of the boot server's functional tests: a lab network in a
namespace, a test site, `provisioner serve` as a real process, qemu nodes."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from provisioner import programs
from provisioner.state.store import Store

REPO = Path(__file__).resolve().parents[2]
PREFIX = "pv4"
NET = "198.51.100"
PROV_IP = f"{NET}.2"
LAB_CACHE = Path(os.environ.get("PROVISIONER_LAB_CACHE", Path.home() / ".cache/provisioner-lab"))


def sh(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        programs.command(argv), capture_output=True, text=True, check=check, timeout=timeout
    )


def wait_for(what: str, predicate: Callable[[], object], timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (children, grandchildren, ...)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@dataclass
class LabNet:
    """A namespace with a bridge holding the provisioner's address."""

    ns: str
    bridge: str
    suffix: str

    def run(
        self, *argv: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns, *argv, check=check, timeout=timeout)

    def argv(self, *argv: str) -> list[str]:
        return programs.command(["ip", "netns", "exec", self.ns, *argv])

    def add_tap(self, index: int) -> str:
        tap = f"{PREFIX}t{self.suffix}{index}"
        self.run("ip", "tuntap", "add", "dev", tap, "mode", "tap")
        self.run("ip", "link", "set", tap, "master", self.bridge, "up")
        return tap

    @contextmanager
    def client_ns(self, mac: str) -> Iterator[str]:
        """A second namespace plugged into the bridge by a veth (a DHCP client)."""
        ns = f"{PREFIX}c{self.suffix}{secrets.token_hex(2)}"
        host_end, client_end = f"{PREFIX}v{self.suffix}", f"{PREFIX}w{self.suffix}"
        sh("ip", "netns", "add", ns)
        try:
            self.run("ip", "link", "add", host_end, "type", "veth", "peer", "name", client_end)
            self.run("ip", "link", "set", client_end, "netns", ns)
            self.run("ip", "link", "set", host_end, "master", self.bridge, "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", client_end, "address", mac)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", client_end, "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            yield ns
        finally:
            self.run("ip", "link", "del", host_end, check=False)
            sh("ip", "netns", "del", ns, check=False)


@contextmanager
def lab_net() -> Iterator[LabNet]:
    suffix = secrets.token_hex(2)
    ns, bridge = f"{PREFIX}n{suffix}", f"{PREFIX}b{suffix}"
    sh("ip", "netns", "add", ns)
    try:
        net = LabNet(ns, bridge, suffix)
        net.run("ip", "link", "set", "lo", "up")
        net.run("ip", "link", "add", bridge, "type", "bridge")
        net.run("ip", "addr", "add", f"{PROV_IP}/24", "dev", bridge)
        net.run("ip", "link", "set", bridge, "up")
        yield net
    finally:
        sh("ip", "netns", "del", ns, check=False)


def node_entry(
    name: str, index: int, boot_mode: str = "uefi", role: str = "compute"
) -> dict[str, object]:
    return {
        "name": name,
        "role": role,
        "macs": [f"52:54:00:4a:00:{index:02x}"],
        "ip": f"{NET}.{10 + index}",
        "bmc": {
            "driver": "ipmi",
            "address": "127.0.0.1",
            "port": 16230 + index,
            "user": "admin",
            "password": {"file": "secrets/bmc-password"},
        },
        "boot_mode": boot_mode,
    }


def write_lab_site(
    site_dir: Path, bridge: str, nodes: list[dict[str, object]], **network: object
) -> Path:
    """The example site moved onto the lab network, with the given nodes."""
    path = site_dir / "site.yaml"
    data = yaml.safe_load(path.read_text())
    data["network"] = {
        "cidr": f"{NET}.0/24",
        "gateway": f"{NET}.1",
        "dhcp_pool": {"start": f"{NET}.200", "end": f"{NET}.220"},
        "provisioner": {
            "address": PROV_IP,
            "http_port": 8080,
            "tftp_port": 69,
            "interface": bridge,
        },
        "unknown_macs": "ignore",
        **network,
    }
    data["dns"]["server"] = f"{NET}.3"
    data["dns"]["reverse_zone"] = "100.51.198.in-addr.arpa"
    data["profiles"] = {
        "lab": {
            "kernel": "lab/vmlinuz",
            "initrd": "lab/initrd.img",
            "repo": f"http://{PROV_IP}:8080/repo/",
            "kernel_args": "console=ttyS0 panic=-1 quiet no_timer_check",
        }
    }
    data["defaults"]["profile"] = "lab"
    data["roles"] = {"controller": {"layout": "controller"}, "compute": {"layout": "compute"}}
    # the inventory insists on an HA control plane: two controllers that never boot here
    controllers = [node_entry(f"ctl{i}", 0x80 + i, role="controller") for i in (1, 2)]
    data["nodes"] = controllers + nodes
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)
    return path


class Serve:
    """`provisioner serve` as a real process (inside the lab namespace)."""

    def __init__(self, argv_prefix: list[str], site: Path, state: Path, *extra: str) -> None:
        self.log_path = state.parent / "serve.log"
        state.mkdir(parents=True, exist_ok=True)
        argv = [
            *argv_prefix,
            sys.executable,
            "-m",
            "provisioner",
            "--site",
            str(site),
            "--state-dir",
            str(state),
            "-v",
            "serve",
            *extra,
        ]
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_log(self, text: str, timeout: float = 60) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited ({self.proc.returncode}):\n{self.log()}")
            return text in self.log()

        wait_for(f"'{text}' in the serve log", seen, timeout)

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def lab_boot_files(boot_files: Path, marker: str) -> None:
    """Debian's cloud kernel and a busybox initrd whose /init prints ``marker``,
    the kernel command line, and powers off."""
    from provisioner_lab.initramfs import INIT_PROLOGUE, build_initramfs
    from provisioner_lab.kernel import fetch_cloud_kernel

    kernel = fetch_cloud_kernel(LAB_CACHE)
    lab = boot_files / "lab"
    lab.mkdir(parents=True, exist_ok=True)
    shutil.copy(kernel.vmlinuz, lab / "vmlinuz")
    init = INIT_PROLOGUE + (f'echo "{marker}"\necho "cmdline: $(cat /proc/cmdline)"\npoweroff -f\n')
    build_initramfs(lab / "initrd.img", init)


def boot_events(state: Path, node: str) -> list[str]:
    """The messages of a node's boot events (which scripts and files it was served)."""
    store = Store.open(state)
    try:
        return [e.message for e in store.events(node) if e.kind == "boot script"]
    finally:
        store.close()
