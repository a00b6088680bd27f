"""A role's partition layout planned against a node's disks.

``plan_partitions`` turns a layout (layouts.py) and the node's disk hints into
a ``PartitionPlan``: plain data that the kickstart and preseed templates print.
Disks are *slots* (0, 1, ...): the installer's %pre picks real disks for them
from the hints at install time.

The plan is checked for what pykickstart does not catch (a logical volume in a
volume group that does not exist, a group on a missing physical volume, two
volumes on one mount point, no / or /boot, a disk slot the node does not have)
and for sizes that cannot fit the disks the hints promise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from provisioner.content import ContentPaths
from provisioner.errors import LayoutError
from provisioner.install.layouts import Layout, load_layout
from provisioner.inventory.models import BootMode, Node, Site
from provisioner.inventory.rolesettings import DiskPlan, StorageSettings

__all__ = ["Layout", "LayoutError", "PartitionPlan", "check_plan", "load_layout", "plan_for"]

DISK_GB_BYTES = 10**9  # disk hints are in vendor gigabytes, as lsblk -b / 1e9 shows them
PV_OVERHEAD_MIB = 8  # LVM metadata plus extent rounding per logical volume, generous
ALIGNMENT_MIB = 2  # first-partition alignment and the GPT backup header


# ---- the plan (what the templates print) ------------------------------------------------


@dataclass(frozen=True)
class PlannedPartition:
    name: str  # mount point or id: /boot, /boot/efi, biosboot, raid.boot0, pv.os
    disk: int
    size_mib: int
    fstype: str | None = None
    grow: bool = False


@dataclass(frozen=True)
class PlannedRaid:
    mount: str  # /boot, /boot/efi or pv.os
    device: str
    members: tuple[str, ...]
    fstype: str | None = None
    level: str = "RAID1"


@dataclass(frozen=True)
class PlannedVolumeGroup:
    name: str
    pvs: tuple[str, ...]


@dataclass(frozen=True)
class PlannedVolume:
    mount: str
    vg: str
    name: str
    fstype: str
    size_mib: int
    grow: bool = False
    max_mib: int | None = None


@dataclass(frozen=True)
class PartitionPlan:
    node: str
    layout: str
    boot_mode: BootMode
    select: Literal["smallest", "first"]
    disk_count: int  # disks the node has (hints)
    os_disks: tuple[int, ...]
    data_disks: tuple[int, ...]  # used by this plan (LVM); others are left untouched
    os_disk_min_mib: int  # an OS disk smaller than this cannot hold the layout
    min_disk_gb: int | None  # from the hints
    partitions: tuple[PlannedPartition, ...] = ()
    raids: tuple[PlannedRaid, ...] = ()
    volume_groups: tuple[PlannedVolumeGroup, ...] = ()
    volumes: tuple[PlannedVolume, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def disks(self) -> tuple[int, ...]:
        """Every disk slot the installer may touch (OS first)."""
        return self.os_disks + self.data_disks

    @property
    def raid1(self) -> bool:
        return len(self.os_disks) > 1

    @property
    def os_disk_min_bytes(self) -> int:
        hinted = (self.min_disk_gb or 0) * DISK_GB_BYTES
        return max(hinted, self.os_disk_min_mib * 1024 * 1024)

    @property
    def mounts(self) -> list[str]:
        mounts = [p.name for p in self.partitions if p.name.startswith("/")]
        mounts += [r.mount for r in self.raids if r.mount.startswith("/")]
        mounts += [v.mount for v in self.volumes if v.mount.startswith("/")]
        return mounts


# ---- planning --------------------------------------------------------------------------


def plan_for(site: Site, node: Node, content: ContentPaths | None = None) -> PartitionPlan:
    """Load the node's role layout and plan it (the usual entry point)."""
    role = site.roles.get(node.role)
    if role is None:
        raise LayoutError(f"node {node.name}: role '{node.role}' is not defined")
    layout = load_layout(content or site.content_paths(), role.layout, node.name)
    settings = site.role_settings(node.role) if layout.data_disks.use == "plan" else None
    return plan_partitions(
        layout,
        node,
        boot_mode=site.boot_mode_of(node),
        layout_name=role.layout,
        role_settings=role.settings,
        disk_plan=settings.plan if isinstance(settings, StorageSettings) else None,
        data_volume_group=settings.volume_group if isinstance(settings, StorageSettings) else None,
    )


def plan_partitions(
    layout: Layout,
    node: Node,
    *,
    boot_mode: BootMode,
    layout_name: str = "",
    role_settings: dict[str, Any] | None = None,
    disk_plan: DiskPlan | None = None,
    data_volume_group: str | None = None,
) -> PartitionPlan:
    """Pure: a layout and a node's disk hints -> a checked partition plan."""
    where = f"node {node.name}: layout '{layout_name or '?'}'"
    hints = node.disks
    want = layout.os_disks
    if want.raid == "raid1" and want.count < 2:
        raise LayoutError(f"{where}: os_disks.raid is raid1 but os_disks.count is {want.count}")
    if want.raid == "none" and want.count > 1:
        raise LayoutError(f"{where}: os_disks.count {want.count} needs raid: raid1")
    n_os = want.count
    notes: list[str] = []
    if hints.count < n_os:
        if want.when_fewer == "error":
            raise LayoutError(
                f"{where}: a RAID1 across {n_os} disks needs {n_os} disks, "
                f"but disks.count is {hints.count}"
            )
        notes.append(f"{hints.count} disk(s): OS on one disk, no RAID1")
        n_os = hints.count
    raid = n_os > 1
    os_disks = tuple(range(n_os))

    data_use = _data_use(layout, role_settings or {}, where)
    data_disks = tuple(range(n_os, hints.count)) if data_use == "lvm" else ()
    if data_use == "plan":
        data_disks = _planned_lvm_disks(disk_plan, n_os, hints.count, where)
    if data_use == "lvm" and not data_disks:
        raise LayoutError(
            f"{where}: data disks become volume group '{layout.data_disks.volume_group}' "
            f"but disks.count {hints.count} leaves none besides the OS disk(s)"
        )

    if layout.boot is None:
        raise LayoutError(f"{where}: no /boot (add a boot: section)")
    if not any(v.mount == "/" for v in layout.volumes):
        raise LayoutError(f"{where}: no / volume")
    _unique(layout, where)
    if layout.data_disks.volume_group == layout.volume_group and data_disks:
        raise LayoutError(f"{where}: data_disks.volume_group must differ from volume_group")

    partitions: list[PlannedPartition] = []
    raids: list[PlannedRaid] = []
    firmware = ("/boot/efi", "efi", layout.efi_size)
    if boot_mode == "bios":
        firmware = ("biosboot", "biosboot", layout.biosboot_size)
    fw_mount, fw_type, fw_size = firmware

    # firmware partition: per disk for biosboot, mirrored ESP under UEFI
    if fw_mount == "biosboot" or not raid:
        for disk in os_disks:
            partitions.append(PlannedPartition(fw_mount, disk, fw_size, fw_type))
    else:
        members = tuple(f"raid.efi{d}" for d in os_disks)
        partitions += [
            PlannedPartition(m, d, fw_size) for m, d in zip(members, os_disks, strict=True)
        ]
        raids.append(PlannedRaid("/boot/efi", "efi", members, "efi"))

    pv_min = sum(v.size for v in layout.volumes) + PV_OVERHEAD_MIB * (len(layout.volumes) + 1)
    if raid:
        for what, size, fstype in (
            ("boot", layout.boot.size, layout.boot.fstype),
            ("pv", pv_min, None),
        ):
            members = tuple(f"raid.{what}{d}" for d in os_disks)
            partitions += [
                PlannedPartition(m, d, size, grow=what == "pv")
                for m, d in zip(members, os_disks, strict=True)
            ]
            mount = "/boot" if what == "boot" else "pv.os"
            raids.append(PlannedRaid(mount, what if what == "boot" else "pv00", members, fstype))
    else:
        partitions.append(PlannedPartition("/boot", 0, layout.boot.size, layout.boot.fstype))
        partitions.append(PlannedPartition("pv.os", 0, pv_min, grow=True))

    vgs = [PlannedVolumeGroup(layout.volume_group, ("pv.os",))]
    volumes = [
        PlannedVolume(v.mount, layout.volume_group, v.name, v.fs, v.size, v.grow, v.max)
        for v in layout.volumes
    ]
    if data_disks:
        pvs = tuple(f"pv.data{d}" for d in data_disks)
        partitions += [
            PlannedPartition(pv, d, 1, grow=True) for pv, d in zip(pvs, data_disks, strict=True)
        ]
        vgs.append(PlannedVolumeGroup(data_volume_group or layout.data_disks.volume_group, pvs))

    os_min = fw_size + layout.boot.size + pv_min + ALIGNMENT_MIB
    plan = PartitionPlan(
        node=node.name,
        layout=layout_name,
        boot_mode=boot_mode,
        select=hints.select or want.select,
        disk_count=hints.count,
        os_disks=os_disks,
        data_disks=data_disks,
        os_disk_min_mib=os_min,
        min_disk_gb=hints.min_size_gb,
        partitions=tuple(partitions),
        raids=tuple(raids),
        volume_groups=tuple(vgs),
        volumes=tuple(volumes),
        notes=tuple(notes),
    )
    check_plan(plan, where)
    return plan


def _planned_lvm_disks(plan: DiskPlan | None, n_os: int, count: int, where: str) -> tuple[int, ...]:
    """The data disks the storage role's disk plan gives to Cinder's volume group (made at
    install); the ones for Ceph OSDs and Swift stay untouched for prepare-disks.sh."""
    if plan is None:
        raise LayoutError(f"{where}: data_disks.use is plan, but the role has no disk plan")
    uses = plan.assign(count - n_os)
    if uses is None:
        raise LayoutError(
            f"{where}: the disk plan ({plan.describe()}) needs {plan.fixed} data disk(s), "
            f"but disks.count {count} leaves {count - n_os} besides the OS disk(s)"
        )
    return tuple(n_os + i for i, use in enumerate(uses) if use == "cinder-lvm")


def _data_use(layout: Layout, settings: dict[str, Any], where: str) -> str:
    key = layout.data_disks.use_from_setting
    if layout.data_disks.use == "plan" or key is None or key not in settings:
        return layout.data_disks.use
    value = settings[key]
    if value == "lvm":
        return "lvm"
    if value in ("untouched", "ceph", "rbd", "swift", "none"):
        return "untouched"
    raise LayoutError(
        f"{where}: role setting {key}: '{value}' is not one of lvm, rbd, ceph, swift, none"
    )


def _unique(layout: Layout, where: str) -> None:
    mounts: set[str] = {"/boot", "/boot/efi"}
    names: set[str] = set()
    for vol in layout.volumes:
        if vol.mount != "swap" and vol.mount in mounts:
            raise LayoutError(f"{where}: two volumes mount {vol.mount}")
        if vol.name in names:
            raise LayoutError(f"{where}: two volumes are named {vol.name}")
        if vol.max is not None and vol.max < vol.size:
            raise LayoutError(
                f"{where}: volume {vol.name}: max {vol.max} MiB < size {vol.size} MiB"
            )
        if (vol.mount == "swap") != (vol.fs == "swap"):
            raise LayoutError(f"{where}: volume {vol.name}: swap needs mount swap and fstype swap")
        mounts.add(vol.mount)
        names.add(vol.name)


def check_plan(plan: PartitionPlan, where: str | None = None) -> None:
    """The cross-references pykickstart does not check, and whether the sizes fit."""
    where = where or f"node {plan.node}: layout '{plan.layout}'"
    slots = set(range(plan.disk_count))
    ids = [p.name for p in plan.partitions if not p.name.startswith("/")]
    ids += [r.mount for r in plan.raids if not r.mount.startswith("/")]
    for part in plan.partitions:
        if part.disk not in slots:
            raise LayoutError(
                f"{where}: partition {part.name} on disk {part.disk}, "
                f"but the node has {plan.disk_count} disk(s)"
            )
    used_members: set[str] = set()
    for raid in plan.raids:
        if len(raid.members) < 2:
            raise LayoutError(f"{where}: RAID1 {raid.mount} has {len(raid.members)} disk")
        for member in raid.members:
            if member not in ids or member in used_members:
                raise LayoutError(
                    f"{where}: RAID {raid.mount} member {member} is not a free partition"
                )
            used_members.add(member)
        disks = [p.disk for p in plan.partitions if p.name in raid.members]
        if len(set(disks)) != len(disks):
            raise LayoutError(f"{where}: RAID {raid.mount} has two members on one disk")
    vg_names = {vg.name for vg in plan.volume_groups}
    for vg in plan.volume_groups:
        for pv in vg.pvs:
            if not pv.startswith("pv.") or pv not in ids:
                raise LayoutError(
                    f"{where}: volume group {vg.name} on missing physical volume {pv}"
                )
    for vol in plan.volumes:
        if vol.vg not in vg_names:
            raise LayoutError(f"{where}: volume {vol.name} in missing volume group {vol.vg}")
    mounts = plan.mounts
    for mount in ("/", "/boot"):
        if mounts.count(mount) != 1:
            raise LayoutError(f"{where}: {mounts.count(mount)} file systems on {mount} (needs one)")
    if len(set(mounts)) != len(mounts):
        raise LayoutError(f"{where}: a mount point is used twice ({', '.join(sorted(mounts))})")
    if plan.boot_mode == "uefi" and "/boot/efi" not in mounts:
        raise LayoutError(f"{where}: UEFI boot needs an EFI system partition on /boot/efi")
    if plan.boot_mode == "bios" and not any(p.name == "biosboot" for p in plan.partitions):
        raise LayoutError(f"{where}: legacy BIOS boot from GPT needs a biosboot partition")
    if plan.min_disk_gb is not None:
        disk_mib = plan.min_disk_gb * DISK_GB_BYTES // (1024 * 1024)
        if plan.os_disk_min_mib > disk_mib:
            raise LayoutError(
                f"{where}: needs {plan.os_disk_min_mib} MiB on each OS disk, but disks.min_size_gb "
                f"{plan.min_disk_gb} GB is only {disk_mib} MiB"
            )
