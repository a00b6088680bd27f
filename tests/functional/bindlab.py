"""Shared pieces of the DNS functional tests: a real BIND and real clients (dig, nsupdate)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from provisioner import programs
from provisioner.inventory import Site, load_site
from provisioner_lab.bind import BindConfig, BindError, BindServer, render_bind_config

_HANDED_OUT: set[int] = set()


#: the example site's zones, as the DNS tests query them
DOMAIN = "lab.example.test"
REVERSE = "2.0.192.in-addr.arpa"


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 right now, never handed out before.

    The kernel may give the same free port to two calls in a row (the first caller has
    not bound it yet); a lab whose DNS server and a BMC then shared a port answered
    dig with another protocol's packets. So a port is handed out once per session.
    """
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            if port in _HANDED_OUT:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free port")


def point_site_at(site_dir: Path, port: int) -> None:
    """Rewrite the copied site.yaml so dns.server/port name the test BIND."""
    path = site_dir / "site.yaml"
    text = path.read_text()
    text = re.sub(r"(?m)^  server: .*$", "  server: 127.0.0.1", text, count=1)
    text = re.sub(r"(?m)^  port: \d+$", f"  port: {port}", text, count=1)
    path.write_text(text)


@dataclass
class Lab:
    site_dir: Path
    config: BindConfig
    server: BindServer

    @property
    def port(self) -> int:
        return self.config.port

    def site(self) -> Site:
        return load_site(self.site_dir / "site.yaml")

    def dig(self, *args: str) -> list[str]:
        """``dig +short`` answers, sorted (dig is the independent client)."""
        cmd = ["dig", "@127.0.0.1", "-p", str(self.port), "+short", "+norecurse", "+tries=3"]
        result = subprocess.run(
            programs.command([*cmd, *args]), capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return sorted(line for line in result.stdout.splitlines() if line)

    def axfr(self, zone: str) -> str:
        key = self.config.workdir / "tsig.key"
        cmd = ["dig", "@127.0.0.1", "-p", str(self.port), "-k", str(key), "AXFR", zone]
        result = subprocess.run(programs.command(cmd), capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def nsupdate(self, zone: str, *lines: str) -> None:
        """Change the zone behind the provisioner's back, as another admin would."""
        script = "\n".join([f"server 127.0.0.1 {self.port}", f"zone {zone}", *lines, "send", ""])
        key = self.config.workdir / "tsig.key"
        result = subprocess.run(
            programs.command(["nsupdate", "-k", str(key)]),
            input=script,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [
            sys.executable,
            "-m",
            "provisioner",
            "--site",
            str(self.site_dir / "site.yaml"),
            "--state-dir",
            str(self.site_dir / "state"),
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def make_lab(site_dir: Path, workdir: Path, start: bool = True) -> Iterator[Lab]:
    """A lab BIND for the copied example site; named is always stopped afterwards."""
    last: Exception | None = None
    for _ in range(3):  # another test may grab the port between probe and bind
        port = free_port()
        point_site_at(site_dir, port)
        config = render_bind_config(load_site(site_dir / "site.yaml"), workdir, port)
        server = BindServer(config)
        try:
            if start:
                server.start(timeout=60)
        except BindError as exc:
            server.stop()
            last = exc
            continue
        try:
            yield Lab(site_dir, config, server)
        finally:
            server.stop()
        return
    raise RuntimeError(f"could not start named: {last}")


def write_big_site(site_dir: Path, nodes: int) -> None:
    """Turn the copied example site into one with ``nodes`` nodes in 198.18.0.0/16.

    198.18.0.0/15 is the benchmarking range; here it is only record data.
    """
    raw = yaml.safe_load((site_dir / "site.yaml").read_text())
    raw["network"] = {"cidr": "198.18.0.0/16", "provisioner": {"address": "198.18.255.2"}}
    raw["dns"]["reverse_zone"] = "18.198.in-addr.arpa"
    raw["roles"]["controller"]["ha"]["vips"][0]["address"] = "198.18.255.10"
    # controllers and compute nodes only: no storage node to hold Glance's images in Swift
    raw["roles"]["controller"].pop("settings", None)
    password = {"file": "secrets/bmc-password", "generate": "password"}
    raw["nodes"] = [
        {
            "name": f"n{i:04d}",
            "role": "controller" if i < 3 else "compute",
            "macs": [f"52:54:00:00:{i // 256:02x}:{i % 256:02x}"],
            "ip": f"198.18.{i // 250}.{i % 250 + 1}",
            "bmc": {
                "driver": "ipmi",
                "address": "127.0.0.1",
                "port": 20000 + i,
                "user": "a",
                "password": password,
            },
        }
        for i in range(nodes)
    ]
    (site_dir / "site.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
