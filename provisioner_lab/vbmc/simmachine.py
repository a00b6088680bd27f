"""A virtual node whose firmware and installer are simulated (lab/simfirmware.py).

Same interface as QemuMachine, so the virtual BMC treats both alike: power on
runs one boot from the device in force; when the simulated installer finishes
it "reboots" (on_exit("reset")), and the BMC boots it again with the next boot
device, exactly as with qemu's -no-reboot. Used for fast pipeline tests and
demos at scale; it still talks DHCP-less TFTP/HTTP to the real boot server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from provisioner_lab.simfirmware import Behaviour, SimFirmwareError, SimNode

log = logging.getLogger(__name__)


class SimSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    mac: str
    boot_mode: Literal["uefi", "bios"] = "uefi"
    http_base: str
    tftp_host: str
    tftp_port: int
    behaviour: Behaviour = "normal"
    ip: str | None = None  # the node's address, its requests' source


class SimMachine:
    def __init__(self, spec: SimSpec, run_dir: Path, on_exit: Callable[[str], None]) -> None:
        self.spec = spec
        self.on_exit = on_exit
        run_dir.mkdir(parents=True, exist_ok=True)
        self.node = SimNode(
            spec.name,
            spec.mac,
            spec.boot_mode,
            spec.http_base,
            spec.tftp_host,
            spec.tftp_port,
            run_dir / f"{spec.name}.simdisk",
            spec.behaviour,
            spec.ip,
        )
        self._lock = threading.Lock()
        self._generation = 0
        self._on = False
        self.log_path = run_dir / f"{spec.name}.console.log"

    def start(self, boot_device: str) -> int:
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._on = True
        threading.Thread(
            target=self._run,
            args=(generation, boot_device),
            name=f"sim-{self.spec.name}",
            daemon=True,
        ).start()
        return 0

    def _run(self, generation: int, device: str) -> None:
        try:
            outcome = self.node.boot("network" if device == "network" else "disk")
        except SimFirmwareError as exc:
            outcome = f"firmware: {exc}"
        except Exception as exc:  # keep the BMC alive whatever the simulation does
            log.exception("node %s: simulated boot crashed", self.spec.name)
            outcome = f"firmware crashed: {exc}"
        with self.log_path.open("a") as fh:
            fh.write(f"boot from {device}: {outcome}\n")
        log.info("node %s: %s", self.spec.name, outcome)
        with self._lock:
            current = generation == self._generation and self._on
        if current and outcome.endswith("rebooting"):
            self.on_exit("reset")

    def adopt(self, pid: int) -> bool:
        return False

    @property
    def pid(self) -> int | None:
        return None

    def running(self) -> bool:
        with self._lock:
            return self._on

    def kill(self) -> None:
        with self._lock:
            self._generation += 1
            self._on = False

    def powerdown(self) -> None:
        self.kill()
        self.on_exit("off")
