"""Partition layouts: per-role data in kickstart/layouts/<name>.yaml, validated.

A layout says what a role needs: how many disks the OS spans and whether they
are mirrored, /boot, the firmware partition sizes, the OS volume group and its
logical volumes, and what becomes of the other disks. partitioning.py plans it
against a node's disks.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from provisioner.content import ContentPaths
from provisioner.errors import ConfigError, LayoutError
from provisioner.inventory.yamlload import load_yaml_file

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(MiB|M|GiB|G|TiB|T)?\s*$", re.IGNORECASE)
_UNIT_MIB = {"m": 1, "mib": 1, "g": 1024, "gib": 1024, "t": 1024**2, "tib": 1024**2}


def _size_mib(value: Any) -> Any:
    """'8 GiB', '600M', 512 (MiB) -> MiB as an int."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if not m:
            raise ValueError(f"'{value}' is not a size (like 600 MiB or 8 GiB)")
        unit = (m.group(2) or "MiB").lower()
        return int(float(m.group(1)) * _UNIT_MIB[unit])
    return value


SizeMiB = Annotated[int, BeforeValidator(_size_mib), Field(ge=1)]
LvName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_+.-]{0,62}$")]
MountPoint = Annotated[str, Field(pattern=r"^(swap|/[A-Za-z0-9_./-]*)$")]
FsType = Literal["xfs", "ext4", "ext3", "swap"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OsDisks(_Data):
    count: Annotated[int, Field(ge=1, le=2)] = 1
    raid: Literal["none", "raid1"] = "none"
    select: Literal["smallest", "first"] = "first"
    when_fewer: Literal["single", "error"] = Field(
        "single", description="A node with fewer disks: install on one disk, or refuse"
    )


class Boot(_Data):
    size: SizeMiB = 1024
    fstype: Literal["xfs", "ext4"] = "xfs"


class Volume(_Data):
    mount: MountPoint
    name: LvName
    size: SizeMiB
    fstype: FsType | None = None
    grow: bool = False
    max: SizeMiB | None = None

    @property
    def fs(self) -> str:
        return self.fstype or ("swap" if self.mount == "swap" else "xfs")


class DataDisks(_Data):
    use: Literal["untouched", "lvm", "plan"] = Field(
        "untouched",
        description="plan: the storage role's disk_plan decides (its cinder-lvm disks "
        "become volume_group, the others stay untouched)",
    )
    use_from_setting: str | None = Field(
        None, description="Role setting whose value 'lvm' or 'untouched' overrides `use`"
    )
    volume_group: LvName = "data"


class Layout(_Data):
    description: str = ""
    os_disks: OsDisks = Field(default_factory=OsDisks)
    boot: Boot | None = None
    efi_size: SizeMiB = 600
    biosboot_size: SizeMiB = 1
    volume_group: LvName = "vg_os"
    volumes: list[Volume] = Field(default_factory=list)
    data_disks: DataDisks = Field(default_factory=DataDisks)


def layout_path(content: ContentPaths, name: str) -> Path:
    return content.find("kickstart", f"layouts/{name}.yaml")


def load_layout(content: ContentPaths, name: str, node: str = "") -> Layout:
    """Read and validate kickstart/layouts/<name>.yaml (site copy first)."""
    who = f"node {node}: " if node else ""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise LayoutError(f"{who}layout '{name}': not a plain layout name")
    try:
        path = layout_path(content, name)
    except FileNotFoundError as exc:
        raise LayoutError(
            f"{who}layout '{name}': no file layouts/{name}.yaml in kickstart/"
        ) from exc
    try:
        stat = path.stat()
        return _parse_layout(str(path), stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        raise LayoutError(f"{who}layout '{name}' ({path}): {exc.strerror}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise LayoutError(
            f"{who}layout '{name}' ({path}): {where}: {first['msg']}"
            + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else "")
        ) from exc
    except ConfigError as exc:
        raise LayoutError(f"{who}layout '{name}' ({path}): {exc}") from exc


@lru_cache(maxsize=64)
def _parse_layout(path: str, _mtime_ns: int, _size: int) -> Layout:
    """Parsed once per version of the file (the key holds its mtime and size)."""
    return Layout.model_validate(load_yaml_file(Path(path)))
