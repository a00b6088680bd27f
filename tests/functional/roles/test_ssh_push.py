"""SSH push of a bundle: a real sshd on a loopback port, the system ssh client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.errors import DeliveryError
from provisioner.inventory import load_site
from provisioner.roles import DeployFacts, generate
from provisioner.roles.bundles import BundleStore
from provisioner.roles.delivery import SshPush
from provisioner.state.store import Store
from tests.functional.roles.conftest import run

pytestmark = [
    pytest.mark.functional,
    pytest.mark.skipif(os.geteuid() != 0, reason="sshd with a root login needs root"),
]


@dataclass
class Sshd:
    port: int
    key: Path
    known_hosts: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    d = tmp_path / "sshd"
    d.mkdir(mode=0o700)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")])
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client_key")])
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    port = free_port()
    (d / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1:{port}\nHostKey {d / 'host_key'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
    )
    proc = subprocess.Popen(
        [programs.path("sshd"), "-D", "-e", "-f", str(d / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=(d / "sshd.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((d / "sshd.log").read_text()) from None
                time.sleep(0.1)
        yield Sshd(port, d / "client_key", d / "known_hosts")
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_push_puts_the_bundle_on_the_node(site_dir: Path, sshd: Sshd, tmp_path: Path) -> None:
    site = load_site(site_dir / "site.yaml")
    bundles = BundleStore(tmp_path / "state")
    bundles.write("cmp1", generate(site, "cmp1", DeployFacts()))
    remote = tmp_path / "node-root" / "etc" / "provisioner" / "bundle"
    push = SshPush(
        port=sshd.port, remote_dir=str(remote), identity=sshd.key, known_hosts=sshd.known_hosts
    )
    push.push("cmp1", bundles, "root@127.0.0.1")
    pushed = (remote / "nova" / "nova-compute.conf").read_text()
    assert pushed == (bundles.path("cmp1") / "nova" / "nova-compute.conf").read_text()
    assert sorted((remote / "MANIFEST").read_text().split()) == sorted(bundles.files("cmp1"))

    # a second push replaces the bundle as a whole (no stale files left behind)
    (remote / "stale.conf").write_text("old")
    push.push("cmp1", bundles, "root@127.0.0.1")
    assert not (remote / "stale.conf").exists()
    assert (remote / "nova" / "nova-compute.conf").exists()


def test_push_with_a_key_the_node_does_not_accept_fails_clearly(
    site_dir: Path, sshd: Sshd, tmp_path: Path
) -> None:
    site = load_site(site_dir / "site.yaml")
    bundles = BundleStore(tmp_path / "state")
    bundles.write("cmp1", generate(site, "cmp1", DeployFacts()))
    stranger = tmp_path / "stranger"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)])
    push = SshPush(
        port=sshd.port,
        remote_dir=str(tmp_path / "nowhere"),
        identity=stranger,
        known_hosts=sshd.known_hosts,
    )
    with pytest.raises(DeliveryError, match=r"node cmp1: bundle push to root@127.0.0.1 failed"):
        push.push("cmp1", bundles, "root@127.0.0.1")
    assert not (tmp_path / "nowhere").exists()


def test_bundle_command_renders_and_pushes(site_dir: Path, sshd: Sshd, tmp_path: Path) -> None:
    state_dir = site_dir / "state"
    store = Store.open(state_dir)
    store.enroll("net1")
    store.close()
    remote = tmp_path / "net1-root" / "bundle"
    cmd = [sys.executable, "-m", "provisioner", "--site", str(site_dir / "site.yaml")]
    cmd += ["--state-dir", str(state_dir), "bundle", "net1", "--render"]
    cmd += ["--push", "root@127.0.0.1", "--ssh-port", str(sshd.port), "--remote-dir", str(remote)]
    cmd += ["--ssh-identity", str(sshd.key), "--ssh-known-hosts", str(sshd.known_hosts)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"net1: bundle pushed to root@127.0.0.1:{remote}" in result.stdout
    assert "l3_ha = true" in (remote / "neutron" / "neutron.conf.d" / "l3-ha.conf").read_text()
