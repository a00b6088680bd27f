"""The qemu process behind a virtual BMC: start, kill, ACPI power button, exit watch.

qemu runs with ``-no-reboot``; a QMP connection tells why it stopped: a reset
(guest reboot, or a reset request) means the node reboots and the BMC must start
it again with the boot device now in force; anything else means it is off.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from provisioner import programs
from provisioner_lab.vbmc.qemu import OVMF_CODE, QemuSpec, build_qemu_argv

log = logging.getLogger(__name__)

ExitCallback = Callable[[str], None]  # called with "reset" or "off"


class QemuMachine:
    def __init__(self, spec: QemuSpec, run_dir: Path, on_exit: ExitCallback) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.on_exit = on_exit
        self.qmp_path = run_dir / f"{spec.name}.qmp"
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._generation = 0
        self._lock = threading.Lock()
        self._qmp: socket.socket | None = None
        self._last_shutdown: str | None = None

    # -- control --
    def start(self, boot_device: str) -> int:
        spec = self.spec
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if spec.boot_mode == "uefi":
            vars_path = spec.ovmf_vars or self.run_dir / f"{spec.name}.OVMF_VARS.fd"
            if spec.ovmf_code == OVMF_CODE:
                programs.path("OVMF_CODE_4M.fd")  # missing: the one clear error, not qemu's
            if not vars_path.exists():
                shutil.copyfile(programs.path("OVMF_VARS_4M.fd"), vars_path)
            spec = spec.model_copy(update={"ovmf_vars": vars_path})
        self.qmp_path.unlink(missing_ok=True)
        if any(not nic.rom and not nic.firmware_pxe for nic in spec.nics):
            programs.path("efi-virtio.rom")  # qemu's NIC ROM (iPXE), found by qemu itself
        argv = programs.command(build_qemu_argv(spec, boot_device, self.qmp_path))
        log.info("node %s: starting qemu, boot from %s", spec.name, boot_device)
        stderr = (self.run_dir / f"{spec.name}.qemu.log").open("ab")
        with self._lock:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,  # a Ctrl-C meant for the BMC does not hit the node
            )
            stderr.close()
            self._pid = self._proc.pid
            self._generation += 1
            self._last_shutdown = None
            generation = self._generation
        threading.Thread(target=self._watch, args=(generation,), daemon=True).start()
        return self._proc.pid

    def adopt(self, pid: int) -> bool:
        """Take over a qemu left running by a previous BMC process."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        if str(self.qmp_path).encode() not in cmdline:
            return False
        log.info("node %s: adopting running qemu pid %d", self.spec.name, pid)
        with self._lock:
            self._proc, self._pid = None, pid
            self._generation += 1
            generation = self._generation
        threading.Thread(target=self._watch, args=(generation,), daemon=True).start()
        return True

    @property
    def pid(self) -> int | None:
        return self._pid if self.running() else None

    def running(self) -> bool:
        with self._lock:
            return self._alive()

    def kill(self) -> None:
        with self._lock:
            self._generation += 1  # the watcher of this process stays quiet
            pid, proc = self._pid, self._proc
            self._pid = self._proc = None
        if pid is None:
            return
        log.info("node %s: killing qemu pid %d", self.spec.name, pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if proc is not None:
            proc.wait(timeout=10)
        else:
            _wait_gone(pid, 10.0)

    def powerdown(self) -> None:
        """Press the ACPI power button (the guest decides)."""
        self._qmp_command("system_powerdown")

    # -- internals --
    def _alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        if self._pid is None:
            return False
        try:
            os.kill(self._pid, 0)
        except ProcessLookupError:
            return False
        return not _is_zombie(self._pid)

    def _watch(self, generation: int) -> None:
        """Follow QMP events and notice when this qemu process ends."""
        self._connect_qmp(generation)
        while True:
            time.sleep(0.1)
            with self._lock:
                if generation != self._generation:
                    return
                if self._alive():
                    continue
                self._generation += 1
                self._pid = self._proc = None
                reason = self._last_shutdown or "crash"
            kind = "reset" if reason.endswith("reset") else "off"
            log.info("node %s: qemu exited (%s)", self.spec.name, reason)
            self.on_exit(kind)
            return

    def _connect_qmp(self, generation: int) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if generation != self._generation:
                return
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(self.qmp_path))
                break
            except OSError:
                sock.close()
                time.sleep(0.05)
        else:
            log.warning("node %s: no QMP socket; reboots look like power off", self.spec.name)
            return
        reader = sock.makefile("rb")
        reader.readline()  # greeting
        sock.sendall(b'{"execute": "qmp_capabilities"}\n')
        self._qmp = sock
        threading.Thread(target=self._read_events, args=(reader,), daemon=True).start()

    def _read_events(self, reader: object) -> None:
        for line in reader:  # type: ignore[attr-defined]
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("event") == "SHUTDOWN":
                self._last_shutdown = str(message.get("data", {}).get("reason", "unknown"))

    def _qmp_command(self, name: str) -> None:
        sock = self._qmp
        if sock is None:
            raise RuntimeError(f"node {self.spec.name}: qemu monitor not connected")
        sock.sendall(json.dumps({"execute": name}).encode() + b"\n")


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if _is_zombie(pid):
            return
        time.sleep(0.05)
