"""A discovering copy of the example site and the reports its machines post."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

NEW_MAC = "52:54:00:aa:00:01"
SECOND_MAC = "52:54:00:aa:00:02"

#: what the discovery OS of a 2-disk machine from the vendor's sheet posts
REPORT: dict[str, Any] = {
    "boot_mac": NEW_MAC,
    "nics": [
        {"mac": NEW_MAC, "name": "enp1s0", "driver": "virtio_net", "link": True,
         "speed_mbps": 1000},
        {"mac": SECOND_MAC, "name": "enp2s0", "driver": "virtio_net", "link": False},
    ],
    "disks": [
        {"name": "vda", "size_bytes": 40 * 10**9, "model": "QEMU HARDDISK", "serial": "OS-DISK-1",
         "rotational": True, "by_path": "pci-0000:00:05.0"},
        {"name": "vdb", "size_bytes": 500 * 10**9, "serial": "DATA-DISK-2", "rotational": True},
        {"name": "sr0", "size_bytes": 1024, "removable": True},
    ],
    "cpu": {"model": "QEMU Virtual CPU", "count": 2},
    "memory_mb": 4096,
    "boot_mode": "uefi",
    "dmi": {"vendor": "QEMU", "product": "Standard PC (Q35 + ICH9, 2009)", "serial": "LAB-SN-0042"},
    "bmc_address": "127.0.0.1",
}  # fmt: skip

DISCOVERY = {
    "environment": {"kernel": "discovery/vmlinuz", "initrd": "discovery/initrd.img"},
    "addresses": {"start": "192.0.2.60", "end": "192.0.2.69"},
    "unmatched": "wait",
    "rules": [
        {
            "match": {"serial": "LAB-SN-0042"},
            "enroll": {
                "name": "cmp-{index}",
                "role": "compute",
                "rack": "r2",
                "bmc": {
                    "port": 6300,
                    "user": "admin",
                    "password": {"file": "secrets/bmc-password"},
                },
            },
        }
    ],
}


def report(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(REPORT)
    out.update(changes)
    return out


def make_discovering(site_dir: Path, discovery: dict[str, Any] | None = None) -> Path:
    """site.yaml with unknown_macs: discover and a discovery section, edited as an
    operator would (the rest of the file, comments included, stays as it is)."""
    path = site_dir / "site.yaml"
    text = path.read_text().replace("unknown_macs: ignore", "unknown_macs: discover", 1)
    section = yaml.safe_dump({"discovery": DISCOVERY if discovery is None else discovery},
                             sort_keys=False)  # fmt: skip
    path.write_text(text.replace("\nnodes:\n", f"\n{section}\nnodes:\n", 1))
    return path
