"""Read a lab node's raw disk image from the host, without loop devices.

What a user checks after an install: the GPT (``sfdisk --json``), the md
RAID superblocks (v1.2), the LVM metadata of a physical volume (plain or on
md), and files on an ext filesystem inside (``debugfs`` at a byte offset).
Loop partitions, mdadm assembly and LVM activation on the host are avoided on
purpose: the lab must not touch the host's block layer.
"""

from __future__ import annotations

import contextlib
import json
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner import programs
from provisioner.errors import ProvisionerError

SECTOR = 512
MARKER_PATH = "/etc/provisioner/lab-installed"
MD_MAGIC = 0xA92B4EFC


class DiskImageError(ProvisionerError):
    """A disk image does not hold what was looked for."""


@dataclass(frozen=True)
class MdSuperblock:
    level: int
    raid_disks: int
    name: str
    data_offset: int  # bytes from the member partition's start
    #: the array's set UUID as mdadm prints it (``mdadm --detail``: 4 groups of 8 hex)
    uuid: str = ""


@dataclass(frozen=True)
class LogicalVolume:
    vg: str
    name: str
    offset: int  # bytes from the start of the disk image
    size_mib: int


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(programs.command(argv), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DiskImageError(f"{argv[0]}: {exc}") from exc


@dataclass(frozen=True)
class DiskImage:
    path: Path

    def partitions(self) -> list[dict[str, Any]]:
        """The GPT entries as sfdisk reports them (node, start, size, type, name)."""
        done = _run(["sfdisk", "--json", str(self.path)])
        if done.returncode != 0:
            raise DiskImageError(f"{self.path}: no partition table ({done.stderr.strip()})")
        table = json.loads(done.stdout)["partitiontable"]
        return list(table.get("partitions", []))

    def partition_offset(self, number: int) -> int:
        parts = self.partitions()
        if not 1 <= number <= len(parts):
            raise DiskImageError(f"{self.path}: no partition {number}")
        return int(parts[number - 1]["start"]) * SECTOR

    def _read(self, offset: int, length: int) -> bytes:
        with self.path.open("rb") as fh:
            fh.seek(offset)
            return fh.read(length)

    def md_superblock(self, number: int) -> MdSuperblock:
        """The md v1.2 superblock of partition ``number`` (4 KiB into it)."""
        raw = self._read(self.partition_offset(number) + 4096, 256)
        if struct.unpack_from("<I", raw, 0)[0] != MD_MAGIC:
            raise DiskImageError(f"{self.path}: partition {number} is not an md RAID member")
        name = raw[32:64].rstrip(b"\0").decode(errors="replace")
        level, _layout, _size, _chunk, raid_disks = struct.unpack_from("<iIQII", raw, 72)
        (data_offset,) = struct.unpack_from("<Q", raw, 128)
        hexed = raw[16:32].hex()  # set_uuid: v1 superblocks keep it in byte order
        uuid = ":".join(hexed[i : i + 8] for i in range(0, 32, 8))
        return MdSuperblock(level, raid_disks, name, data_offset * SECTOR, uuid)

    def md_data_offset(self, number: int, disk: Path | None = None) -> int:
        """Where the md array's data starts on ``disk`` (this image by default), in bytes."""
        image = DiskImage(disk) if disk else self
        return image.partition_offset(number) + image.md_superblock(number).data_offset

    def _pv_start(self, number: int) -> int:
        try:
            return self.md_data_offset(number)
        except DiskImageError:
            return self.partition_offset(number)

    def lvm_metadata(self, number: int) -> dict[str, Any]:
        """The current LVM text metadata of the PV on partition ``number`` (plain or on md)."""
        pv = self._pv_start(number)
        if self._read(pv + SECTOR, 8) != b"LABELONE":
            raise DiskImageError(f"{self.path}: partition {number} holds no LVM physical volume")
        header = self._read(pv + 4096, 64)
        if header[4:20] != b"\x20LVM2 x[5A%r0N*>":
            raise DiskImageError(f"{self.path}: partition {number}: no LVM metadata area")
        (mda_start,) = struct.unpack_from("<Q", header, 24)
        text_offset, text_size = struct.unpack_from("<QQ", header, 40)
        text = self._read(pv + mda_start + text_offset, text_size).rstrip(b"\0").decode()
        return parse_lvm_text(text)

    def logical_volume(self, number: int, vg: str, lv: str) -> LogicalVolume:
        """Where logical volume ``vg/lv`` starts in this image (first segment, linear)."""
        meta = self.lvm_metadata(number)
        if vg not in meta:
            raise DiskImageError(f"{self.path}: no volume group {vg} (found {sorted(meta)})")
        group = meta[vg]
        volumes = group.get("logical_volumes", {})
        if lv not in volumes:
            raise DiskImageError(f"{self.path}: no logical volume {vg}/{lv}")
        extent = int(group["extent_size"]) * SECTOR
        pe_start = int(next(iter(group["physical_volumes"].values()))["pe_start"]) * SECTOR
        segments = [v for k, v in volumes[lv].items() if re.fullmatch(r"segment\d+", k)]
        first = segments[0]
        stripes = first["stripes"]
        extents = sum(int(s["extent_count"]) for s in segments)
        offset = self._pv_start(number) + pe_start + int(stripes[1]) * extent
        return LogicalVolume(vg, lv, offset, extents * extent // 2**20)

    def filesystem_magic(self, number: int) -> str:
        """'vfat', 'ext', 'swap' or 'unknown' for what partition ``number`` starts with."""
        start = self.partition_offset(number)
        boot = self._read(start, 4096)
        if boot[82:87] == b"FAT32" or boot[54:59] in (b"FAT16", b"FAT12"):
            return "vfat"
        if boot[4086:4096] == b"SWAPSPACE2":
            return "swap"
        if self._read(start + 1080, 2) == b"\x53\xef":
            return "ext"
        return "unknown"


def _ext_offsets(image: DiskImage) -> list[int]:
    """Byte offsets of every ext filesystem on the image: partitions, md data, LVs."""
    found: list[int] = []
    for number in range(1, len(image.partitions()) + 1):
        starts = [image.partition_offset(number)]
        with contextlib.suppress(DiskImageError):
            starts.append(image.md_data_offset(number))
        for start in starts:
            if image._read(start + 1080, 2) == b"\x53\xef":
                found.append(start)
        try:
            meta = image.lvm_metadata(number)
        except DiskImageError:
            continue
        for vg, group in meta.items():
            if not isinstance(group, dict):
                continue
            for lv in group.get("logical_volumes", {}):
                try:
                    volume = image.logical_volume(number, vg, lv)
                except (DiskImageError, KeyError, IndexError):
                    continue  # a volume that does not start on this PV
                if image._read(volume.offset + 1080, 2) == b"\x53\xef":
                    found.append(volume.offset)
    return found


def installed_marker(disks: list[Path]) -> dict[str, str]:
    """The lab installer's marker (node=, hostname=, ...) from whichever filesystem holds
    it, wherever the layout put the root filesystem; empty when there is none."""
    for disk in disks:
        image = DiskImage(disk)
        try:
            offsets = _ext_offsets(image)
        except DiskImageError:
            continue
        for offset in offsets:
            try:
                text = read_ext_file(disk, offset, MARKER_PATH)
            except DiskImageError:
                continue
            return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {}


def read_ext_file(image: Path, offset: int, path: str, listing: bool = False) -> str:
    """A file's text (or a directory's names) on the ext filesystem at ``offset``."""
    request = f"ls {path}" if listing else f"cat {path}"
    done = _run(["debugfs", "-R", request, f"{image}?offset={offset}"])
    errors = [ln for ln in done.stderr.splitlines() if not ln.startswith("debugfs ")]
    if done.returncode != 0 or errors:
        raise DiskImageError(f"{image}@{offset}: {request}: {' '.join(errors).strip()}")
    return done.stdout


_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*")|([\w.+-]+)|(\S))', re.S)


def parse_lvm_text(text: str) -> dict[str, Any]:
    """Parse LVM2's text metadata format into nested dicts and lists."""
    tokens = [
        t
        for m in _TOKEN.finditer(text)
        if not m.group(1)
        for t in [m.group(2) or m.group(3) or m.group(4)]
        if t
    ]
    pos = 0

    def value() -> Any:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "[":
            items = []
            while tokens[pos] != "]":
                if tokens[pos] == ",":
                    pos += 1
                    continue
                items.append(value())
            pos += 1
            return items
        if tok.startswith('"'):
            return tok[1:-1]
        return int(tok) if re.fullmatch(r"-?\d+", tok) else tok

    def block(end: str | None) -> dict[str, Any]:
        nonlocal pos
        out: dict[str, Any] = {}
        while pos < len(tokens) and tokens[pos] != end:
            key = tokens[pos]
            pos += 1
            if tokens[pos] == "{":
                pos += 1
                out[key] = block("}")
                pos += 1
            elif tokens[pos] == "=":
                pos += 1
                out[key] = value()
        return out

    return block(None)
