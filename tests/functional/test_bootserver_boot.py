"""The whole network boot with real parts: `provisioner serve` (dnsmasq, tftpy,
gunicorn) in a namespace, and a qemu node on a tap of its bridge.

- UEFI: OVMF's own PXE client -> DHCP (arch 7) -> TFTP ipxe.efi from tftpy ->
  iPXE -> DHCP again (user class iPXE) -> HTTP boot script -> kernel + initrd.
- BIOS: SeaBIOS with qemu's iPXE ROM -> DHCP (already iPXE, so no TFTP step)
  -> HTTP boot script -> kernel + initrd.

The initrd's /init prints a marker and the kernel command line (which carries
the node's kickstart URL and token), then powers off.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bootserver_support import (
    LabNet,
    Serve,
    boot_events,
    lab_boot_files,
    lab_net,
    node_entry,
    wait_for,
    write_lab_site,
)

from provisioner import programs
from provisioner.state.store import Store
from provisioner.state.tokens import DeployTokens

pytestmark = [pytest.mark.functional, pytest.mark.lab]

MARKER = "PV4-LAB-INIT-RAN"
OVMF_CODE = Path(programs.location("OVMF_CODE_4M.fd"))
BOOT_TIMEOUT = 150  # TCG on a loaded 2-core machine; a boot takes 20-40 s


@pytest.fixture(scope="module")
def boot_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = tmp_path_factory.mktemp("boot-files")
    lab_boot_files(files, MARKER)
    return files


@pytest.fixture
def lab(site_dir: Path, boot_files: Path) -> Iterator[tuple[LabNet, Serve, Path]]:
    with lab_net() as net:
        write_lab_site(
            site_dir,
            net.bridge,
            [node_entry("bios1", 1, "bios"), node_entry("uefi1", 2, "uefi")],
        )
        state = site_dir / "state"
        store = Store.open(state)
        for name in ("bios1", "uefi1"):
            store.enroll(name)
            store.start_build_mode(name)
        store.close()
        serve = Serve(net.argv(), site_dir / "site.yaml", state, f"--boot-files={boot_files}")
        try:
            serve.wait_log("http: serving on")
            yield net, serve, state
        finally:
            serve.stop()


def boot(net: LabNet, tmp: Path, mac: str, uefi: bool) -> str:
    tap = net.add_tap(1 if not uefi else 2)
    serial = tmp / "serial.log"
    firmware: list[str] = []
    nic = f"virtio-net-pci,netdev=n0,mac={mac},bootindex=1"
    if uefi:
        vars_copy = tmp / "OVMF_VARS.fd"
        shutil.copy(programs.path("OVMF_VARS_4M.fd"), vars_copy)
        firmware = [
            "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,file={vars_copy}",
        ]  # fmt: skip
        nic += ",romfile="  # no iPXE ROM: the firmware's own PXE client starts the chain
    argv = net.argv(
        "qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-nographic", "-no-reboot",
        "-monitor", "none", "-serial", f"file:{serial}", *firmware,
        "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no", "-device", nic,
    )  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + BOOT_TIMEOUT
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if serial.exists() and "reboot: Power down" in serial.read_text(errors="replace"):
                break
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    return serial.read_text(errors="replace") if serial.exists() else ""


def token_of(state: Path, node: str) -> str:
    store = Store.open(state)
    try:
        token = DeployTokens.from_state_dir(state).token_for(store.get(node))
        assert token
        return token
    finally:
        store.close()


def test_uefi_node_boots_the_whole_chain(lab: tuple[LabNet, Serve, Path], tmp_path: Path) -> None:
    net, serve, state = lab
    console = boot(net, tmp_path, "52:54:00:4a:00:02", uefi=True)
    log = serve.log()
    assert "NBP filename is ipxe.efi" in console, console[-3000:]
    assert "tftp: node uefi1 (198.51.100.12): sending ipxe.efi" in log
    assert "/boot/52-54-00-4a-00-02.ipxe" in console
    assert MARKER in console, console[-3000:]
    cmdline = next(line for line in console.splitlines() if line.startswith("cmdline:"))
    assert f"inst.ks=http://198.51.100.2:8080/ks/uefi1?token={token_of(state, 'uefi1')}" in cmdline
    assert "initrd=initrd.img" in cmdline
    wait_for(
        "the boot event", lambda: boot_events(state, "uefi1") == ["boot script served (install)"]
    )
    assert "boot: node uefi1" in log and "DHCPACK" in log
    assert "files: node uefi1 (198.51.100.12): GET lab/initrd.img" in log


def test_bios_node_boots_the_whole_chain(lab: tuple[LabNet, Serve, Path], tmp_path: Path) -> None:
    net, serve, state = lab
    console = boot(net, tmp_path, "52:54:00:4a:00:01", uefi=False)
    assert "iPXE" in console
    assert "/boot/52-54-00-4a-00-01.ipxe" in console
    assert MARKER in console, console[-3000:]
    cmdline = next(line for line in console.splitlines() if line.startswith("cmdline:"))
    assert f"inst.ks=http://198.51.100.2:8080/ks/bios1?token={token_of(state, 'bios1')}" in cmdline
    wait_for(
        "the boot event", lambda: boot_events(state, "bios1") == ["boot script served (install)"]
    )
    serve.wait_log("dhcp: node bios1")
