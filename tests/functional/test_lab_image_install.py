"""Nodes install a real Debian image from the generated kickstart and boot it from disk.

The lab site's profile is switched to an image profile; `provisioner image build`'s
code builds the image (cached under the lab cache dir, about 80 s the first time)
and the project's templates render each node's kickstart (liveimg, the role's
layout, the first-boot unit). A small HTTP server of this test stands in for
`provisioner serve`: it serves the kickstart and the image and records callbacks.
The lab installer deploys the image in qemu; then the node boots from its own
disks with no -kernel, calls back "booted" with its kernel, and we log in over SSH
to check the running system. One UEFI controller: RAID1 (the ESP too) + LVM.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from provisioner import programs
from provisioner.install.images import ImageStore, image_name, plan_image
from provisioner.install.kickstart import render_kickstart
from provisioner.inventory import Site, load_site
from provisioner_lab.installer import (
    DEFAULT_CACHE_DIR,
    LabInstaller,
    build_lab_installer,
    kernel_args,
)
from provisioner_lab.network import plan_network, qemu_netdev
from provisioner_lab.site import LabSpec, write_lab_site

pytestmark = [pytest.mark.functional]

INSTALL_TIMEOUT = 420  # TCG on a loaded 2-core machine: about 90-150 s here
BOOT_TIMEOUT = 300  # firmware, GRUB, kernel, systemd, first-boot callback: 30-80 s
IMAGE_CACHE = DEFAULT_CACHE_DIR / "images"
OVMF_CODE = Path(programs.location("OVMF_CODE_4M.fd"))


@dataclass
class Provisioner:
    """What the stand-in for `provisioner serve` saw."""

    token: str
    kickstarts: dict[str, str] = field(default_factory=dict)
    callbacks: list[tuple[str, dict[str, object], bool]] = field(default_factory=list)
    image_gets: int = 0


def serve(seen: Provisioner, images: ImageStore) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, code: int, body: bytes = b"") -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            node = url.path.rsplit("/", 1)[-1]
            if url.path.startswith("/ks/") and parse_qs(url.query).get("token") == [seen.token]:
                self._reply(200, seen.kickstarts[node].encode())
            elif url.path.startswith("/images/"):
                path = images.root / url.path.removeprefix("/images/")
                if path.resolve().parent.parent != images.root.resolve() or not path.is_file():
                    self._reply(404)
                    return
                seen.image_gets += 1
                self.send_response(200)
                self.send_header("Content-Length", str(path.stat().st_size))
                self.end_headers()
                with path.open("rb") as fh:
                    shutil.copyfileobj(fh, self.wfile, 1 << 20)
            else:
                self._reply(404)

        def do_POST(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            node = url.path.split("/")[4] if url.path.startswith("/api/v1/nodes/") else "?"
            ok = self.headers.get("Authorization", "") == f"Bearer {seen.token}"
            seen.callbacks.append((node, body, ok))
            self._reply(202, b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Lab:
    site: Site
    key: Path
    images: ImageStore
    installer: LabInstaller


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    for tool in ("qemu-system-x86_64", "mmdebstrap", "ssh", "ssh-keygen"):
        programs.path(tool)
    state = tmp_path_factory.mktemp("lab-state")
    key = state / "id_ed25519"
    subprocess.run(
        [programs.path("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
    )
    site_path = write_lab_site(state, LabSpec(mode="user"))
    data = yaml.safe_load(site_path.read_text())
    # the lab's profile installs an image (its nodes apply no bundle: no peers here)
    assert data["profiles"]["lab"]["image"] == {"apply_bundle": False}
    # the base package set only (the image the lab's non-controller nodes get), which
    # boots in the 1 GiB below; the lab's controllers add HA packages and get 2 GiB
    data["roles"]["controller"]["image_packages"] = []
    data["defaults"]["ssh_keys"] = [key.with_suffix(".pub").read_text().strip()]
    site_path.write_text(yaml.safe_dump(data, sort_keys=False))
    site = load_site(site_path)
    images = ImageStore(IMAGE_CACHE)
    for role in ("controller",):
        images.build(plan_image(site, "lab", role), image_name("lab", role))
    installer = build_lab_installer(tmp_path_factory.mktemp("installer"), DEFAULT_CACHE_DIR)
    return Lab(site, key, images, installer)


def qemu(
    node_name: str, lab: Lab, disks: list[Path], uefi: bool, vars_file: Path, netdev: str
) -> list[str]:
    node = lab.site.node(node_name)
    argv = [
        "qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "1024", "-smp", "1",
        "-nographic", "-no-reboot", "-monitor", "none", "-device", "virtio-rng-pci",
        "-netdev", netdev, "-device", f"virtio-net-pci,netdev=n0,mac={node.primary_mac}",
    ]  # fmt: skip
    for i, disk in enumerate(disks):
        argv += ["-drive", f"file={disk},format=raw,if=virtio,index={i},cache=unsafe"]
    if uefi:
        if not vars_file.exists():
            shutil.copy(programs.path("OVMF_VARS_4M.fd"), vars_file)
        argv += [
            "-drive", f"if=pflash,format=raw,unit=0,file={OVMF_CODE},readonly=on",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_file}",
        ]  # fmt: skip
    return argv


def ssh(lab: Lab, port: int, command: str) -> str:
    argv = [
        "ssh", "-i", str(lab.key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20",
        "root@127.0.0.1", command,
    ]  # fmt: skip
    done = subprocess.run(programs.command(argv), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_for(what: str, check: object, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(1)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise AssertionError(f"{what}: not within {timeout} s\n{tail}")


# the UEFI controller: its ESP mirrored too (three RAID1 arrays). The BIOS RAID1 path
# (ctl2) is installed and checked the same way by the lab tests' rebuilds (tests/lab):
# one qemu install here is enough to locate a failure below the pipeline.
@pytest.mark.parametrize(("node_name", "uefi"), [("ctl1", True)])
def test_node_installs_the_image_and_boots_it_from_disk(
    lab: Lab, tmp_path: Path, node_name: str, uefi: bool
) -> None:
    node = lab.site.node(node_name)
    assert lab.site.boot_mode_of(node) == ("uefi" if uefi else "bios")
    seen = Provisioner(token=f"tok-{node_name}-0123456789abcdef")
    server = serve(seen, lab.images)
    port = server.server_address[1]
    base = f"http://192.0.2.2:{port}"  # slirp maps the provisioner's address to our loopback
    text = render_kickstart(lab.site, node, token=seen.token, base_url=base, images=lab.images)
    assert "\nliveimg --url=" in text
    seen.kickstarts[node_name] = text
    net = plan_network([node_name], "user")
    netdev = qemu_netdev(net, node_name, str(node.ip))
    disks = [tmp_path / f"vd{c}.img" for c in "ab"]
    for disk in disks:
        subprocess.run([programs.path("truncate"), "-s", "32G", str(disk)], check=True)
    vars_file = tmp_path / "OVMF_VARS.fd"
    try:
        # 1. the install: the lab installer with the kickstart's URL, as iPXE would start it
        console = tmp_path / "install.log"
        mac = node.primary_mac.replace(":", "-")
        # the boot script names the NIC as the site does (dracut's ifname=NAME:MAC)
        ifname = f"ifname={node.network.interface}:{node.primary_mac}"
        args = kernel_args(
            f"{base}/ks/{node_name}?token={seen.token}", extra=f"BOOTIF=01-{mac} {ifname}"
        )
        argv = qemu(node_name, lab, disks, uefi, vars_file, netdev)
        argv += ["-kernel", str(lab.installer.kernel), "-initrd", str(lab.installer.initrd)]
        argv += ["-append", args, "-serial", f"file:{console}"]
        started = time.monotonic()
        subprocess.run(programs.command(argv), capture_output=True, timeout=INSTALL_TIMEOUT)
        installed_s = time.monotonic() - started
        out = console.read_text(errors="replace")
        assert f"installation of {node_name} complete" in out, out[-4000:]
        assert "image unpacked: sha256 " in out and "GRUB installed:" in out, out[-4000:]
        assert seen.image_gets == 1
        statuses = [(b["status"], ok) for n, b, ok in seen.callbacks if n == node_name]
        assert statuses == [("started", True), ("installed", True)], statuses

        # 2. the first boot: the node's own GRUB, kernel and initramfs; no -kernel
        console = tmp_path / "boot.log"
        ssh_port = free_port()
        argv = qemu(
            node_name, lab, disks, uefi, vars_file, f"{netdev},hostfwd=tcp:127.0.0.1:{ssh_port}-:22"
        )
        argv += ["-serial", f"file:{console}"]
        started = time.monotonic()
        proc = subprocess.Popen(
            programs.command(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            booted = lambda: any(b["status"] == "booted" for _, b, _ in seen.callbacks)  # noqa: E731
            wait_for("the first-boot callback", booted, BOOT_TIMEOUT, console)
            boot_s = time.monotonic() - started
            wait_for(
                "the login prompt",
                lambda: "login:" in console.read_text(errors="replace"),
                60,
                console,
            )
            report = next(b for _, b, _ in seen.callbacks if b["status"] == "booted")
            assert str(report["kernel"]).endswith("-cloud-amd64")
            assert seen.callbacks[-1][2], "the booted callback carries the node's token"

            # 3. inside the running system
            fqdn = lab.site.fqdn(node)
            assert ssh(lab, ssh_port, "hostname -f").strip() == fqdn
            assert ssh(lab, ssh_port, "uname -r").strip() == report["kernel"]
            # on the NIC named as the site says (keepalived's VRRP interface)
            addr = ssh(lab, ssh_port, f"ip -4 -o addr show dev {node.network.interface}")
            assert f"inet {node.ip}/24" in addr
            mdstat = ssh(lab, ssh_port, "cat /proc/mdstat")
            # /boot and the LVM PV mirrored; UEFI: the ESP too (metadata 1.0). md12x numbers:
            # the image's initramfs has no ARRAY lines (not rebuilt), so compare counts
            assert mdstat.count(": active raid1 ") == (3 if uefi else 2), mdstat
            mounts = ssh(lab, ssh_port, "findmnt -rn -o TARGET,SOURCE,FSTYPE").split("\n")
            targets = {m.split(" ")[0] for m in mounts if m}
            assert {"/", "/boot", "/var/log", "/var/lib/mysql", "/var/lib/rabbitmq"} <= targets
            assert ("/boot/efi" in targets) == uefi
            lvs = ssh(lab, ssh_port, "lvs --noheadings -o lv_name vg_os").split()
            assert {"root", "swap", "log", "mysql", "rabbitmq"} == set(lvs)
            shadow = ssh(lab, ssh_port, "getent shadow root").split(":")[1]
            want = lab.site.secret(lab.site.defaults.root_password_hash, "test").get_secret_value()
            assert shadow == want
            assert "active" in ssh(lab, ssh_port, "systemctl is-active ssh")
            print(
                f"{node_name}: install {installed_s:.0f} s, first boot to callback {boot_s:.0f} s"
            )
        finally:
            proc.kill()
            proc.wait()
    finally:
        server.shutdown()
        server.server_close()
        for disk in disks:  # gigabytes once the image is unpacked; the logs stay
            disk.unlink(missing_ok=True)
