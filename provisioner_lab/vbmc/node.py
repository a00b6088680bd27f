"""Power and boot logic of one virtual node, shared by the IPMI front end.

Two modes: with a qemu spec, power on starts the qemu process and power state is
whether it runs; without one ("simulated", for benchmarks and demos), the node
is just its persisted state. Both keep the same boot-flag semantics.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from provisioner_lab.vbmc.machine import QemuMachine
from provisioner_lab.vbmc.qemu import QemuSpec
from provisioner_lab.vbmc.simmachine import SimMachine, SimSpec
from provisioner_lab.vbmc.state import BmcState, StateFile

log = logging.getLogger(__name__)


class VirtualNode:
    def __init__(
        self,
        name: str,
        state_path: Path,
        qemu: QemuSpec | None = None,
        run_dir: Path | None = None,
        sim: SimSpec | None = None,
    ) -> None:
        self.name = name
        self._file = StateFile(state_path)
        self._lock = threading.RLock()
        self.state: BmcState = self._file.load()
        self.machine: QemuMachine | SimMachine | None = None
        if qemu is not None:
            self.machine = QemuMachine(qemu, run_dir or state_path.parent, self._machine_exited)
        elif sim is not None:
            self.machine = SimMachine(sim, run_dir or state_path.parent, self._machine_exited)

    @property
    def simulated(self) -> bool:
        return self.machine is None

    def restore(self) -> None:
        """After a BMC restart: adopt a qemu still running, or start it if it should run."""
        with self._lock:
            if self.machine is None or self.state.power != "on":
                return
            pid = self.state.qemu_pid
            if pid and self.machine.adopt(pid):
                return
            log.info("node %s: was on before the BMC restarted; starting it", self.name)
            self._boot()

    # -- power --
    def power_state(self) -> str:
        with self._lock:
            if self.machine is None:
                return self.state.power
            return "on" if self.machine.running() else "off"

    def power_on(self) -> None:
        with self._lock:
            if self.power_state() == "on":
                return
            self._boot()

    def power_off(self) -> None:
        with self._lock:
            log.info("node %s: power off", self.name)
            self.state.power = "off"
            self.state.qemu_pid = None
            self._save()
            if self.machine is not None:
                self.machine.kill()

    def reset(self) -> None:
        """Hard reset / power cycle: the next boot starts now, with the boot flags in force."""
        with self._lock:
            if self.machine is not None:
                self.machine.kill()
            self._boot()

    def soft_off(self) -> None:
        with self._lock:
            if self.power_state() == "off":
                return
            if self.machine is None:  # a simulated guest obeys the power button at once
                self.power_off()
                return
            log.info("node %s: ACPI power button", self.name)
            self.machine.powerdown()

    # -- boot flags --
    def set_boot(self, device: str, persistent: bool, uefi: bool) -> None:
        with self._lock:
            if persistent:
                self.state.boot.persistent = device
                self.state.boot.once = None
            else:
                self.state.boot.once = device
            self.state.boot.uefi = uefi
            log.info(
                "node %s: boot device %s (%s)",
                self.name,
                device,
                "persistent" if persistent else "next boot only",
            )
            self._save()

    def boot_flags(self) -> tuple[str, bool, bool]:
        """(device in force for the next boot, persistent?, uefi?)."""
        with self._lock:
            flags = self.state.boot
            return flags.next_device(), flags.once is None, flags.uefi

    def close(self, stop_node: bool = True) -> None:
        with self._lock:
            if self.machine is not None and stop_node:
                # keep the power intent: the next BMC start brings the node back
                self.machine.kill()

    # -- internals --
    def _boot(self) -> None:
        device = self.state.boot.take_next()
        self.state.power = "on"
        self.state.last_boot_device = device
        self.state.boots += 1
        log.info("node %s: power on, boot %d from %s", self.name, self.state.boots, device)
        if self.machine is not None:
            self.state.qemu_pid = self.machine.start(device)
        self._save()

    def _machine_exited(self, kind: str) -> None:
        with self._lock:
            if kind == "reset" and self.state.power == "on":
                log.info("node %s: guest rebooted", self.name)
                self._boot()
                return
            log.info("node %s: powered off by the guest", self.name)
            self.state.power = "off"
            self.state.qemu_pid = None
            self._save()

    def _save(self) -> None:
        self._file.save(self.state)
