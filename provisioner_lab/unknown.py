"""`provisioner lab add-unknown`: rack new machines in a running lab.

Each new machine is a qemu node the inventory does not know: its own disks
(with serial numbers), a DMI system serial (qemu's SMBIOS type 1), a tap on
the lab bridge and a virtual BMC on the next free port, powered on to a
network boot, as a freshly racked server does. The lab site discovers
(``network.unknown_macs: discover``), so it boots the lab installer in
discovery mode, reports its hardware and waits for `provisioner enroll`.
Their BMCs run in a second `vbmc serve` process recorded in lab.json, so
`lab down` stops them with the rest. Namespace mode only: in user mode no DHCP
of ours reaches a machine the lab did not plan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provisioner_lab import procs
from provisioner_lab.network import LabNetwork, plan_network
from provisioner_lab.orchestrate import GB, LabError, LabPaths, lab_command
from provisioner_lab.site import LabSpec, secret_ref
from provisioner_lab.vbmc.state import BmcState, BootFlags, StateFile

log = logging.getLogger(__name__)

UNKNOWN_CONFIG = "vbmc-unknown.yaml"


@dataclass(frozen=True)
class UnknownMachine:
    name: str
    mac: str
    bmc_port: int
    serial: str
    disk_serials: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mac": self.mac,
            "bmc": f"127.0.0.1:{self.bmc_port}",
            "serial": self.serial,
            "disk_serials": list(self.disk_serials),
        }


def unknown_mac(index: int) -> str:
    """MACs of added machines: a block of their own, apart from the planned nodes'."""
    return f"52:54:00:00:03:{index + 1:02x}"


def _bmcs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return list((yaml.safe_load(path.read_text()) or {}).get("bmcs", []))


def add_unknown(
    state_dir: Path,
    count: int,
    disks: int = 1,
    serials: tuple[str, ...] = (),
    boot_mode: str = "uefi",
    memory_mib: int = 1024,
) -> list[UnknownMachine]:
    paths = LabPaths(state_dir.resolve())
    record = procs.LabRecord.load(paths.record)
    if record is None or not any(procs.alive(p) for p in record.procs):
        raise LabError(f"no lab running in {paths.root} (run 'provisioner lab up' first)")
    if record.mode != "netns":
        raise LabError("lab add-unknown needs the namespace lab (user mode has no lab DHCP)")
    if len(serials) > count:
        raise LabError(f"--serial given {len(serials)} times for {count} machine(s)")
    unknown_config = paths.root / UNKNOWN_CONFIG
    planned, added = _bmcs(paths.vbmc_config), _bmcs(unknown_config)
    next_port = max(int(b["port"]) for b in planned + added) + 1
    spec = LabSpec()
    new: list[UnknownMachine] = []
    entries: list[dict[str, Any]] = []
    for k in range(count):
        index = len(added) + k
        name = f"new{index + 1}"
        serial = serials[k] if k < len(serials) else f"LAB-NEW-{index + 1:04d}"
        machine = UnknownMachine(
            name, unknown_mac(index), next_port + k, serial,
            tuple(f"{name.upper()}-D{d}" for d in range(disks)),
        )  # fmt: skip
        new.append(machine)
        disk_specs = []
        for d, disk_serial in enumerate(machine.disk_serials):
            path = paths.disk(name, d)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as fh:  # a new machine: blank disks
                fh.truncate(spec.disk_gb * GB)
            disk_specs.append({"path": str(path), "format": "raw", "serial": disk_serial})
        entry: dict[str, Any] = {
            "name": name,
            "port": machine.bmc_port,
            "qemu": {
                "name": name,
                "boot_mode": boot_mode,
                "memory_mb": memory_mib,
                "nics": [{"mac": machine.mac, "tap": ""}],
                "disks": disk_specs,
                "serial_log": str(paths.serial_log(name)),
                "extra_args": [
                    "-device", "virtio-rng-pci",
                    "-smbios", f"type=1,manufacturer=Provisioner Lab,product=Lab Server,"
                               f"serial={serial}",
                ],
            },
        }  # fmt: skip
        if boot_mode == "uefi":
            entry["qemu"]["ovmf_vars"] = str(paths.nvram(name))
        entries.append(entry)
    names = [*record.nodes, *(b["name"] for b in added), *(m.name for m in new)]
    plan = plan_network(names, "netns", namespace=record.namespace)
    LabNetwork(plan).up()  # idempotent: adds the new machines' taps to the bridge
    for entry in entries:
        entry["qemu"]["nics"][0]["tap"] = plan.tap(entry["name"])
        # racked and switched on: the BMC starts it to a network boot
        state = BmcState(power="on", boot=BootFlags(persistent="network", uefi=boot_mode == "uefi"))
        StateFile(paths.state.vbmc / f"{entry['name']}.json").save(state)
    _restart_unknown_bmcs(paths, record, [*added, *entries])
    for machine in new:
        log.info("lab: %s racked (MAC %s, serial %s, BMC port %d)", machine.name, machine.mac,
                 machine.serial, machine.bmc_port)  # fmt: skip
    return new


def _restart_unknown_bmcs(
    paths: LabPaths, record: procs.LabRecord, bmcs: list[dict[str, Any]]
) -> None:
    """One `vbmc serve` for every added machine (restarted with the new ones; a BMC
    restart adopts qemu nodes that still run)."""
    config = paths.root / UNKNOWN_CONFIG
    config.write_text(
        yaml.safe_dump(
            {
                "defaults": {
                    "address": "127.0.0.1",
                    "user": "admin",
                    "password": secret_ref("bmc-password"),
                    "state_dir": str(paths.state.vbmc),
                    "keep_node_on_exit": True,
                },
                "bmcs": bmcs,
            },
            sort_keys=False,
        )
    )
    for old in [p for p in record.procs if p.name == "vbmc-unknown"]:
        procs.stop(old)
        record.procs.remove(old)
    argv = lab_command(paths, record, "vbmc", "serve", "--config", str(config))
    rec = procs.start_detached("vbmc-unknown", argv, paths.log("vbmc-unknown"), str(config))
    record.procs.append(rec)
    record.save(paths.record)
    procs.wait_for(rec, lambda: procs.log_has(rec.log, "virtual BMC(s) on"), 120, "BMCs")
