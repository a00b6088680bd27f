"""A real BIND for the lab and the functional tests.

``render_bind_config`` writes named.conf (from dns/named.conf.j2), the TSIG
key file and empty forward and reverse zones into a work folder;
``BindServer`` runs ``named -g`` in the foreground on a loopback port and
stops it (and only it) again.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

from provisioner import programs
from provisioner.ddns.records import absolute
from provisioner.ddns.zonefile import (
    ZONE_KINDS,
    ZoneRecord,
    nameserver,
    render_zone,
    template_env,
    zone_name,
)
from provisioner.errors import ProvisionerError
from provisioner.inventory.models import Site

log = logging.getLogger(__name__)


class BindError(ProvisionerError):
    pass


@dataclass(frozen=True)
class BindConfig:
    workdir: Path
    conf: Path
    address: str
    port: int
    zones: tuple[str, ...]

    def argv(self, named: str = "named") -> list[str]:
        return [named, "-g", "-c", str(self.conf), "-n", "1"]


def render_bind_config(
    site: Site, workdir: Path, port: int, address: str = "127.0.0.1", serial: int = 1
) -> BindConfig:
    """Write named.conf, the key and empty zones for ``site`` into ``workdir``."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    tsig = site.dns.tsig
    secret = site.secret(tsig.secret, "dns: tsig.secret").get_secret_value()
    key_file = workdir / "tsig.key"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f'key "{tsig.name}" {{\n    algorithm {tsig.algorithm};\n')
        fh.write(f'    secret "{secret}";\n}};\n')
    zones = []
    for kind in ZONE_KINDS:
        name = zone_name(site, kind)
        records = []
        ns = nameserver(site)
        if kind == "forward" and ns.endswith("." + name):
            records.append(ZoneRecord(ns, site.dns.ttl, "A", address))
        path = workdir / f"{name.rstrip('.')}.db"
        path.write_text(render_zone(site, kind, serial, records), encoding="utf-8")
        zones.append({"name": name.rstrip("."), "file": str(path)})
    template = site.content_paths().find("dns", "named.conf.j2").read_text(encoding="utf-8")
    conf = workdir / "named.conf"
    conf.write_text(
        template_env()
        .from_string(template)
        .render(
            key_file=str(key_file),
            key_name=tsig.name,
            workdir=str(workdir),
            port=port,
            address=address,
            zones=zones,
        ),
        encoding="utf-8",
    )
    return BindConfig(workdir, conf, address, port, tuple(z["name"] for z in zones))


class BindServer:
    """``named -g`` as a child process; ``stop()`` kills exactly that process."""

    def __init__(self, config: BindConfig, named: str | None = None) -> None:
        self.config = config
        self.named = named or programs.path("named")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = config.workdir / "named.log"

    def start(self, timeout: float = 30.0) -> BindServer:
        if self.proc is not None and self.proc.poll() is None:
            return self
        log_fh = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.config.argv(self.named),
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log_fh.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Until every zone answers its SOA (named loads zones after opening the port)."""
        deadline = time.monotonic() + timeout
        pending = list(self.config.zones)
        while pending:
            if self.proc is not None and self.proc.poll() is not None:
                raise BindError(f"named exited with {self.proc.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise BindError(f"named not answering for {pending} after {timeout}s")
            try:
                query = dns.message.make_query(absolute(pending[0]), "SOA")
                answer = dns.query.udp(
                    query, self.config.address, timeout=0.5, port=self.config.port
                )
                if answer.rcode() == dns.rcode.NOERROR and answer.answer:
                    pending.pop(0)
                    continue
            except (OSError, dns.exception.DNSException):
                pass
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def __enter__(self) -> BindServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
