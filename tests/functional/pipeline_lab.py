"""A loopback lab for pipeline tests: real BIND, real `serve` (TFTP + HTTP),
virtual BMCs whose nodes run simulated firmware and installer (no VMs).

Everything listens on 127.0.0.1; the site uses 127.0.0.0/24 as its
provisioning network so the nodes' URLs and DNS records point at loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provisioner import programs
from provisioner.inventory import load_site
from provisioner_lab.bind import BindServer, render_bind_config
from tests.example_secrets import seed_example_secrets
from tests.functional.bindlab import free_port
from tests.functional.bootserver_support import Serve

REPO = Path(__file__).resolve().parents[2]

# name, role, behaviour of the simulated node, BMC ("ipmi" served by vbmc, "dead")
NODES = [
    ("ctl1", "controller", "normal", "ipmi"),
    ("ctl2", "controller", "normal", "ipmi"),
    ("ctl3", "controller", "never-callback", "ipmi"),
    ("cmp1", "compute", "normal", "ipmi"),
    ("cmp2", "compute", "normal", "dead"),
]


ALL_GOOD = [
    ("ctl1", "controller", "normal", "ipmi"),
    ("ctl2", "controller", "normal", "ipmi"),
    ("ctl3", "controller", "normal", "ipmi"),
    ("cmp1", "compute", "normal", "ipmi"),
]
Spec = list[tuple[str, str, str, str]]


def write_site(
    root: Path,
    http: int,
    tftp: int,
    dns: int,
    bmc_ports: list[int],
    nodes_spec: Spec,
    site_hooks: dict[str, str] | None = None,
    placement: dict[str, tuple[str, int]] | None = None,
) -> Path:
    """The lab's site.yaml; ``site_hooks`` ("common/20-x": script) go into the site's own
    hooks folder, which takes precedence over the bundled hooks; ``placement`` gives
    nodes a rack and a position (node -> (rack, unit))."""
    seed_example_secrets(root / "secrets")
    nodes = []
    for i, (name, role, _behaviour, bmc) in enumerate(nodes_spec):
        driver = "redfish" if bmc == "dead" else "ipmi"
        address = f"http://127.0.0.1:{bmc_ports[i]}" if bmc == "dead" else "127.0.0.1"
        port = "" if bmc == "dead" else f", port: {bmc_ports[i]}"
        rack, unit = (placement or {}).get(name, (None, None))
        where = f"    rack: {rack}\n    position: {unit}\n" if rack else ""
        nodes.append(
            f"  - name: {name}\n    role: {role}\n{where}"
            f'    macs: ["52:54:00:7f:00:{11 + i:02x}"]\n'
            f"    ip: 127.0.0.{11 + i}\n    boot_mode: {'bios' if i % 2 else 'uefi'}\n"
            f'    bmc: {{driver: {driver}, address: "{address}"{port}, user: admin, '
            "password: {file: secrets/bmc-password}}\n"
            "    network: {interface: enp1s0}\n"
        )
    content = ""
    if site_hooks:
        content = "content: {hooks: site-hooks}\n"
        for rel, body in site_hooks.items():
            hook = root / "site-hooks" / rel
            hook.parent.mkdir(parents=True, exist_ok=True)
            hook.write_text(body)
            hook.chmod(0o755)
    text = (
        content
        + f"""site: {{name: simlab, domain: sim.example.test}}
network:
  cidr: 127.0.0.0/24
  provisioner: {{address: 127.0.0.1, http_port: {http}, tftp_port: {tftp}}}
dns:
  server: 127.0.0.1
  port: {dns}
  forward_zone: sim.example.test
  reverse_zone: 0.0.127.in-addr.arpa
  tsig: {{name: provisioner-key, secret: {{file: secrets/tsig.secret}}}}
defaults:
  profile: sim
  root_password_hash: {{file: secrets/root-password.hash}}
profiles:
  sim: {{kernel: sim/vmlinuz, initrd: sim/initrd.img, repo: "http://127.0.0.1:{http}/repo/"}}
roles:
  controller:
    layout: controller
    ha:
      vips: [{{name: api, address: 127.0.0.10, aliases: [keystone]}}]
  compute: {{layout: compute}}
pipeline:
  timeouts: {{boot_script: 30, kickstart: 30, installed: 20, active: 90}}
  power_retries: 0
  poll_interval: 0.3
nodes:
{"".join(nodes)}"""
    )
    path = root / "site.yaml"
    path.write_text(text)
    return path


def provisioner_argv(site_path: Path, state: Path, *args: str) -> list[str]:
    """`python -m provisioner --site SITE --state-dir STATE ARGS`."""
    return [sys.executable, "-m", "provisioner", "--site", str(site_path),
            "--state-dir", str(state), *args]  # fmt: skip


@dataclass
class SimLab:
    root: Path
    site_path: Path
    state: Path
    dns_port: int
    bmc_ports: list[int]
    serve_args: tuple[str, ...]
    serve: Serve | None = None
    ui_port: int = 0

    def restart_serve(self) -> None:
        """A new daemon (after the test killed the old one)."""
        self.serve = Serve([], self.site_path, self.state, *self.serve_args)

    def argv(self, *args: str) -> list[str]:
        """`provisioner ARGS` against this lab's site and state."""
        return provisioner_argv(self.site_path, self.state, *args)

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), capture_output=True, text=True, timeout=timeout, cwd=REPO
        )

    def dig(self, *args: str) -> str:
        return subprocess.run(
            [programs.path("dig"), "@127.0.0.1", "-p", str(self.dns_port), "+short", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()

    def ipmitool(self, node_index: int, *args: str) -> str:
        argv = [programs.path("ipmitool"), "-I", "lanplus", "-C", "3", "-H", "127.0.0.1",
                "-p", str(self.bmc_ports[node_index]), "-U", "admin", "-P", "lab-only-bmc",
                *args]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout


@contextmanager
def sim_lab(
    root: Path,
    nodes_spec: Spec | None = None,
    site_hooks: dict[str, str] | None = None,
    placement: dict[str, tuple[str, int]] | None = None,
) -> Iterator[SimLab]:
    nodes_spec = nodes_spec or NODES
    http, tftp, dns, api, ui = free_port(), free_port(), free_port(), free_port(), free_port()
    bmc_ports = [free_port() for _ in nodes_spec]
    site_path = write_site(root, http, tftp, dns, bmc_ports, nodes_spec, site_hooks, placement)
    state = root / "state"
    files = state / "boot-files" / "sim"
    files.mkdir(parents=True)
    (files / "vmlinuz").write_bytes(b"\0" * 8192)
    (files / "initrd.img").write_bytes(b"\0" * 8192)

    bind = BindServer(render_bind_config(load_site(site_path), root / "bind", dns))
    bind.start(timeout=60)
    serve_args = ("--no-dhcp", "--workers", "1", "--threads", "8",
                  f"--api-bind=127.0.0.1:{api}", f"--ui-bind=127.0.0.1:{ui}")  # fmt: skip
    serve = Serve([], site_path, state, *serve_args)
    behaviours = [
        f"--sim-behaviour={n}={b}"
        for n, _r, b, bmc in nodes_spec
        if b != "normal" and bmc != "dead"
    ]
    vbmc_log = (root / "vbmc.log").open("w")
    vbmc = subprocess.Popen(
        provisioner_argv(
            site_path, state, "vbmc", "serve", "--from-site", "--sim-firmware", *behaviours
        ),
        cwd=REPO,
        stdout=vbmc_log,
        stderr=subprocess.STDOUT,
    )
    lab = SimLab(root, site_path, state, dns, bmc_ports, serve_args, ui_port=ui)
    lab.serve = serve
    try:
        serve.wait_log("api: serving on", timeout=90)
        deadline = time.monotonic() + 90
        while True:
            served = [n for n, _r, _b, bmc in nodes_spec if bmc != "dead"]
            status = lab.cli("power", "status", *served, "--json")
            if status.returncode == 0:
                break
            assert vbmc.poll() is None, (root / "vbmc.log").read_text()
            assert time.monotonic() < deadline, status.stdout + status.stderr
            time.sleep(0.5)
        yield lab
    finally:
        vbmc.terminate()
        try:
            vbmc.wait(30)
        except subprocess.TimeoutExpired:
            vbmc.kill()
            vbmc.wait()
        vbmc_log.close()
        lab.serve.stop()
        bind.stop()


def results_by_node(stdout: str) -> dict[str, dict[str, object]]:
    return {r["name"]: r for r in json.loads(stdout)}
