"""The lab installer boots in qemu, installs from a kickstart like Anaconda, reboots.

A small HTTP server of this test stands in for the provisioner (serves the
kickstart, records the callbacks the kickstart's own %pre/%post send). The
node uses qemu user-mode networking, so it reaches the server on the host's
loopback through 10.0.2.2. The disk images are read back with sfdisk --json,
and files on the installed root filesystem with debugfs.
"""

from __future__ import annotations

import ctypes
import json
import os
import queue
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from provisioner import programs
from provisioner_lab.diskimage import DiskImage, installed_marker, read_ext_file
from provisioner_lab.installer import (
    DEFAULT_CACHE_DIR,
    LabInstaller,
    build_lab_installer,
    kernel_args,
)
from provisioner_lab.network import LabNetwork, LabNetworkPlan, plan_network, qemu_netdev

pytestmark = [pytest.mark.functional]

DATA = Path(__file__).parent / "data"
QEMU_TIMEOUT = 240  # generous: TCG on a loaded 2-core machine; a run takes ~30 s here
OVMF_CODE = Path(programs.location("OVMF_CODE_4M.fd"))
CLONE_NEWNET = 0x40000000

LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649"
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
RAID = "A19D880F-05FC-4D3B-A006-743F0F84911E"
LVM_PV = "E6D6D379-F507-44C2-A23C-238F2A3DF928"


@dataclass
class FakeProvisionerLog:
    token: str
    kickstart: str = ""
    kickstarts: list[str] = field(default_factory=list)
    callbacks: list[tuple[str, dict[str, object], str]] = field(default_factory=list)


def _server(
    log: FakeProvisionerLog, address: str = "127.0.0.1", namespace: str | None = None
) -> ThreadingHTTPServer:
    """Serves /ks/<node>?token= and records POST /api/v1/nodes/<node>/callback."""
    token = log.token

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, code: int, body: bytes = b"") -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path.startswith("/ks/") and parse_qs(url.query).get("token") == [token]:
                log.kickstarts.append(url.path.rsplit("/", 1)[-1])
                self._reply(200, log.kickstart.encode())
            else:
                self._reply(404)

        def do_POST(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            node = url.path.split("/")[4] if url.path.startswith("/api/v1/nodes/") else "?"
            given = parse_qs(url.query).get("token", [""])[0]
            log.callbacks.append((node, body, "ok" if given == token else "bad-token"))
            self._reply(200, b"{}")

    if namespace is None:
        server = ThreadingHTTPServer((address, 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server
    made: queue.Queue[ThreadingHTTPServer | BaseException] = queue.Queue()

    def serve_in_namespace() -> None:
        # setns() moves only this thread (and the threads it starts) into the lab network.
        try:
            fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
            if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            os.close(fd)
            server = ThreadingHTTPServer((address, 0), Handler)
        except BaseException as exc:
            made.put(exc)
            return
        made.put(server)
        server.serve_forever()

    threading.Thread(target=serve_in_namespace, daemon=True).start()
    result = made.get(timeout=30)
    if isinstance(result, BaseException):
        raise result
    return result


@pytest.fixture(scope="module")
def installer(tmp_path_factory: pytest.TempPathFactory) -> LabInstaller:
    return build_lab_installer(tmp_path_factory.mktemp("installer"), DEFAULT_CACHE_DIR)


@dataclass
class Run:
    returncode: int
    seconds: float
    console: str
    log: FakeProvisionerLog


def _install(
    installer: LabInstaller,
    tmp_path: Path,
    ks_text: str,
    node: str,
    disks: list[Path],
    ip: str = "dhcp",
    uefi: bool = False,
    net: LabNetworkPlan | None = None,
    node_ip: str = "",
) -> Run:
    """Boot the installer on ``disks``: user-mode networking, or the lab network ``net``."""
    token = "tok-" + node + "-0123456789abcdef"
    log = FakeProvisionerLog(token)
    for disk in disks:
        subprocess.run([programs.path("truncate"), "-s", "2G", str(disk)], check=True)
    if net is None:
        server = _server(log)
        base = f"http://10.0.2.2:{server.server_address[1]}"
        netdev = "user,id=n0"
    elif net.mode == "user":  # the lab's fallback: slirp shaped like the lab network
        server = _server(log)
        base = f"http://{net.addresses[0].ip}:{server.server_address[1]}"
        netdev = qemu_netdev(net, node, node_ip)
    else:
        provisioner = str(net.addresses[0].ip)
        server = _server(log, provisioner, net.namespace)
        base = f"http://{provisioner}:{server.server_address[1]}"
        netdev = qemu_netdev(net, node, "")
    log.kickstart = (
        ks_text.replace("@BASE@", base).replace("@NODE@", node).replace("@TOKEN@", token)
    )
    console = tmp_path / "console.log"
    argv = [
        *(net.exec_prefix() if net else []),
        "qemu-system-x86_64",
        "-accel", "tcg", "-m", "768", "-smp", "1", "-nographic", "-no-reboot",
        "-kernel", str(installer.kernel), "-initrd", str(installer.initrd),
        "-append", kernel_args(
            f"{base}/ks/{node}?token={token}", ip=ip, extra="BOOTIF=01-52-54-00-12-34-57"
        ),
        "-netdev", "user,id=n9,restrict=on", "-device", "virtio-net-pci,netdev=n9",
        "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:57",
        "-device", "virtio-rng-pci",
        "-serial", f"file:{console}", "-monitor", "none",
    ]  # fmt: skip
    argv += _disks_and_firmware(disks, uefi, tmp_path / "OVMF_VARS.fd")
    started = time.monotonic()
    try:
        done = subprocess.run(programs.command(argv), capture_output=True, timeout=QEMU_TIMEOUT)
    finally:
        server.shutdown()
        server.server_close()
    out = console.read_text(errors="replace") if console.exists() else ""
    return Run(done.returncode, time.monotonic() - started, out, log)


def _boot_from_disk(tmp_path: Path, disks: list[Path], uefi: bool, expect: str) -> str:
    """Boot the installed disks (no NIC, no kernel): the firmware runs what is on them."""
    console = tmp_path / "second-boot.log"
    argv = [
        "qemu-system-x86_64",
        "-accel", "tcg", "-m", "256", "-nographic", "-no-reboot", "-nic", "none",
        "-serial", f"file:{console}", "-monitor", "none",
    ]  # fmt: skip
    argv += _disks_and_firmware(disks, uefi, tmp_path / "OVMF_VARS.second.fd")
    proc = subprocess.Popen(
        programs.command(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    text = ""
    try:
        deadline = time.monotonic() + QEMU_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            text = console.read_text(errors="replace") if console.exists() else ""
            if expect in text:
                break
            time.sleep(0.5)
    finally:
        proc.kill()
        proc.wait()
    return text


def _section_output(console: str, kind: str) -> list[str]:
    """What the kickstart's %``kind`` sections printed (the installer prefixes it)."""
    return [ln for ln in console.splitlines() if f"%{kind}| " in ln]


def _assert_pre_ran_clean(run: Run) -> None:
    """%pre found every command it runs (udevadm included, as in Anaconda)."""
    assert "running %pre section" in run.console, run.console[-3000:]
    pre = _section_output(run.console, "pre")
    assert not [ln for ln in pre if "not found" in ln], pre  # "udevadm: command not found"


def _parts(disk: Path) -> list[dict[str, str]]:
    return DiskImage(disk).partitions()


def test_bios_controller_raid_lvm_install(installer: LabInstaller, tmp_path: Path) -> None:
    disks = [tmp_path / "vda.img", tmp_path / "vdb.img"]
    lab_user_net = plan_network(["ctl9"], "user")  # the lab's fallback without root
    kickstart = (DATA / "lab-controller-bios.ks").read_text()
    run = _install(
        installer, tmp_path, kickstart, "ctl9", disks, net=lab_user_net, node_ip="192.0.2.11"
    )
    assert "LAB INSTALLER" in run.console and "NOT an operating system installer" in run.console
    assert "inet 192.0.2.11/24" in run.console  # slirp's DHCP gave the node its lab address
    assert run.returncode == 0, run.console[-3000:]
    # The VM left on its own by rebooting (qemu -no-reboot), after a complete install.
    assert "installation of ctl9 complete" in run.console, run.console[-3000:]
    assert "reboot" in run.console.rsplit("complete", 1)[1]
    _assert_pre_ran_clean(run)
    assert run.log.kickstarts == ["ctl9"]
    assert [(n, b["status"], t) for n, b, t in run.log.callbacks] == [
        ("ctl9", "started", "ok"),
        ("ctl9", "installed", "ok"),
    ]
    # The installer never prints the token (the kernel echoes its own command line).
    assert not [ln for ln in run.console.splitlines() if "lab-installer" in ln and "tok-" in ln]

    for disk in disks:
        parts = _parts(disk)
        assert [(p["name"], p["type"]) for p in parts] == [
            ("biosboot", BIOS_BOOT),
            (f"raid.1{disks.index(disk) + 1}", RAID),
            (f"raid.2{disks.index(disk) + 1}", RAID),
        ]
        sizes = [int(p["size"]) * 512 // 2**20 for p in parts]
        assert sizes[:2] == [1, 256]
        assert sizes[2] > 1700  # --grow took the rest of the 2 GiB disk
    # /boot is a RAID1 of raid.11 + raid.12; / is LVM on the second RAID1.
    image = DiskImage(disks[0])
    boot_md = image.md_superblock(2)
    assert boot_md.level == 1 and boot_md.raid_disks == 2 and boot_md.name.endswith("boot")
    root = image.logical_volume(3, "vg_root", "root")
    assert root.size_mib > 900
    marker = read_ext_file(disks[0], root.offset, "/etc/provisioner/lab-installed")
    assert "node=ctl9" in marker
    assert "hostname=ctl9.lab.example.test" in marker
    # %post ran chrooted in the installed system, with its log where it asked.
    assert read_ext_file(disks[0], root.offset, "/root/post-ran").strip() == (
        "post ran on ctl9.lab.example.test"
    )
    fstab = read_ext_file(disks[0], root.offset, "/etc/fstab")
    assert "/dev/md/boot /boot ext4" in fstab and "/dev/vg_root/root / ext4" in fstab
    assert installed_marker(disks)["node"] == "ctl9"  # found without knowing the layout
    # Booted again from its disks (BIOS): the boot code the installer left runs.
    second = _boot_from_disk(tmp_path, disks, uefi=False, expect="booted from local disk")
    assert "provisioner lab: ctl9 booted from local disk" in second, second[-2000:]
    boot_files = read_ext_file(disks[1], image.md_data_offset(2, disk=disks[1]), "/", listing=True)
    assert "lost+found" in boot_files

    # Reprovision: the same kickstart again over the old md arrays and volume group.
    first = installed_marker(disks)
    time.sleep(1.1)  # installed_at has one-second resolution
    again = _install(
        installer, tmp_path, (DATA / "lab-controller-bios.ks").read_text(), "ctl9", disks
    )
    assert "installation of ctl9 complete" in again.console, again.console[-3000:]
    assert [b["status"] for _, b, _ in again.log.callbacks] == ["started", "installed"]
    assert installed_marker(disks)["installed_at"] > first["installed_at"]


def test_uefi_compute_esp_lvm_install_static_ip(installer: LabInstaller, tmp_path: Path) -> None:
    disk = tmp_path / "vda.img"
    run = _install(
        installer,
        tmp_path,
        (DATA / "lab-compute-uefi.ks").read_text(),
        "cmp9",
        [disk],
        ip="192.0.2.16::192.0.2.2:255.255.255.0:cmp9::none",
        uefi=True,
        net=plan_network(["cmp9"], "user"),
        node_ip="192.0.2.16",
    )
    assert run.returncode == 0, run.console[-3000:]
    assert "installation of cmp9 complete" in run.console, run.console[-3000:]
    _assert_pre_ran_clean(run)
    assert "static 192.0.2.16/24" in run.console  # the lab fallback: user-mode, lab-shaped
    assert [b["status"] for _, b, _ in run.log.callbacks] == ["started", "installed"]
    parts = _parts(disk)
    assert [(p["name"], p["type"]) for p in parts] == [
        ("/boot/efi", ESP),
        ("/boot", LINUX_FS),
        ("pv.01", LVM_PV),
    ]
    image = DiskImage(disk)
    assert image.filesystem_magic(1) == "vfat"
    root = image.logical_volume(3, "vg_sys", "root")
    assert "node=cmp9" in read_ext_file(disk, root.offset, "/etc/provisioner/lab-installed")
    assert installed_marker([disk])["hostname"] == "cmp9.lab.example.test"
    assert "/mnt/sysimage" in read_ext_file(disk, root.offset, "/root/nochroot-ran")
    # The volumes %pre wrote into the %include file were made.
    assert DiskImage(disk).logical_volume(3, "vg_sys", "swap").size_mib == 128
    shadow = read_ext_file(disk, root.offset, "/etc/shadow")
    assert shadow.startswith("root:$6$labsalt$")
    # Booted again from its disk (UEFI): the firmware runs \EFI\BOOT\BOOTX64.EFI from the ESP.
    second = _boot_from_disk(tmp_path, [disk], uefi=True, expect="booted from local disk")
    assert "provisioner lab: cmp9 booted from local disk" in second, second[-2000:]


def test_failed_install_runs_onerror_and_powers_off(
    installer: LabInstaller, tmp_path: Path
) -> None:
    """A layout that does not fit: %onerror reports 'failed', the VM stops."""
    disk = tmp_path / "vda.img"
    too_big = (DATA / "lab-compute-uefi.ks").read_text().replace("--size=384", "--size=409600")
    run = _install(installer, tmp_path, too_big, "cmp8", [disk])
    assert run.returncode == 0
    assert "INSTALLATION FAILED" in run.console and "the partitions need" in run.console
    assert [b["status"] for _, b, _ in run.log.callbacks] == ["started", "failed"]


def test_install_over_the_lab_network_namespace(installer: LabInstaller, tmp_path: Path) -> None:
    """The node's tap on the lab bridge carries DHCP (a real dnsmasq in the namespace),
    the kickstart fetch and the callbacks."""
    plan = plan_network(
        ["cmp7"],
        "netns",
        namespace=f"pv9-{uuid.uuid4().hex[:8]}",
        cidr="203.0.113.0/24",
        addresses=("203.0.113.2", "203.0.113.3"),
    )
    lab_net = LabNetwork(plan)
    dnsmasq: subprocess.Popen[bytes] | None = None
    try:
        lab_net.up()
        dnsmasq = subprocess.Popen(
            programs.command([
                *plan.exec_prefix(), "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                "--port=0", f"--interface={plan.bridge}", "--bind-interfaces",
                "--dhcp-range=203.0.113.100,203.0.113.150,255.255.255.0",
                "--dhcp-host=52:54:00:12:34:57,203.0.113.17", "--dhcp-authoritative",
                "--leasefile-ro", f"--pid-file={tmp_path / 'dnsmasq.pid'}",
            ]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        disk = tmp_path / "vda.img"
        run = _install(
            installer,
            tmp_path,
            (DATA / "lab-compute-uefi.ks").read_text(),
            "cmp7",
            [disk],
            net=plan,
        )
    finally:
        if dnsmasq is not None:
            dnsmasq.terminate()
            dnsmasq.wait(timeout=30)
        lab_net.down()
    assert "installation of cmp7 complete" in run.console, run.console[-3000:]
    assert "network: DHCP on eth1" in run.console
    assert "inet 203.0.113.17/24" in run.console  # the address dnsmasq holds for its MAC
    assert [b["status"] for _, b, _ in run.log.callbacks] == ["started", "installed"]
    root = DiskImage(disk).logical_volume(3, "vg_sys", "root")
    assert "node=cmp7" in read_ext_file(disk, root.offset, "/etc/provisioner/lab-installed")


@pytest.fixture(autouse=True)
def _qemu_present() -> Iterator[None]:
    for tool in ("qemu-system-x86_64", "sfdisk", "debugfs"):
        programs.path(tool)  # missing: one clear error naming the package
    yield


def _disks_and_firmware(disks: list[Path], uefi: bool, vars_copy: Path) -> list[str]:
    """qemu arguments for the node's virtio disks and, for UEFI, OVMF with its own
    copy of the variable store."""
    argv: list[str] = []
    for i, disk in enumerate(disks):
        argv += ["-drive", f"file={disk},format=raw,if=virtio,index={i},cache=unsafe"]
    if uefi:
        shutil.copy(programs.path("OVMF_VARS_4M.fd"), vars_copy)
        argv += [
            "-drive", f"if=pflash,format=raw,unit=0,file={OVMF_CODE},readonly=on",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}",
        ]  # fmt: skip
    return argv
