"""Partition layouts as data: planned per node, broken ones refused with the node named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from provisioner.errors import InventoryInvalid
from provisioner.install.kickstart import render_kickstart
from provisioner.install.partitioning import (
    Layout,
    LayoutError,
    PartitionPlan,
    check_plan,
    load_layout,
    plan_for,
    plan_partitions,
)
from provisioner.inventory import Site, load_site
from provisioner.inventory.models import DiskHints, Node

BASE_URL = "http://192.0.2.2:8080"


@pytest.fixture
def site(site_dir: Path) -> Site:
    return load_site(site_dir / "site.yaml")


def site_layout(site_dir: Path, name: str, text: str) -> Site:
    """A site with its own kickstart folder holding layouts/<name>.yaml."""
    folder = site_dir / "kickstart" / "layouts"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)
    site_yaml = site_dir / "site.yaml"
    site_yaml.write_text(site_yaml.read_text() + "\ncontent:\n  kickstart: kickstart\n")
    return load_site(site_yaml)


def with_disks(node: Node, **hints: object) -> Node:
    return node.model_copy(update={"disks": DiskHints(**hints)})  # type: ignore[arg-type]


def test_example_plans(site: Site) -> None:
    ctl = plan_for(site, site.node("ctl1"))
    assert ctl.os_disks == (0, 1) and ctl.raid1
    assert {r.mount for r in ctl.raids} == {"/boot/efi", "/boot", "pv.os"}
    assert {v.mount for v in ctl.volumes} >= {"/", "/var/lib/mysql", "/var/lib/rabbitmq"}
    net2 = plan_for(site, site.node("net2"))
    assert net2.boot_mode == "bios" and net2.partitions[0].name == "biosboot"
    sto = plan_for(site, site.node("sto1"))
    assert sto.select == "smallest" and sto.os_disks == (0,) and sto.data_disks == (1,)


def test_uefi_and_bios_from_the_same_layout(site: Site) -> None:
    layout = load_layout(site.content_paths(), "controller")
    node = site.node("ctl1")
    uefi = plan_partitions(layout, node, boot_mode="uefi", layout_name="controller")
    bios = plan_partitions(layout, node, boot_mode="bios", layout_name="controller")
    assert "/boot/efi" in uefi.mounts and "/boot/efi" not in bios.mounts
    assert [p.disk for p in bios.partitions if p.name == "biosboot"] == [0, 1]
    assert uefi.volumes == bios.volumes


def test_controller_with_one_disk_installs_unmirrored(site: Site) -> None:
    node = with_disks(site.node("ctl1"), count=1, min_size_gb=20)
    layout = load_layout(site.content_paths(), "controller")
    plan = plan_partitions(layout, node, boot_mode="uefi", layout_name="controller")
    assert plan.os_disks == (0,) and plan.raids == () and not plan.raid1
    assert plan.notes == ("1 disk(s): OS on one disk, no RAID1",)


def test_raid1_with_one_disk_is_refused_when_the_layout_requires_it(site_dir: Path) -> None:
    site = site_layout(
        site_dir,
        "controller",
        """
os_disks: {count: 2, raid: raid1, when_fewer: error}
boot: {size: 1 GiB}
volumes: [{mount: /, name: root, size: 4 GiB}]
""",
    )
    node = with_disks(site.node("ctl2"), count=1)
    with pytest.raises(LayoutError) as err:
        plan_for(site, node)
    assert str(err.value) == (
        "node ctl2: layout 'controller': a RAID1 across 2 disks needs 2 disks, but disks.count is 1"
    )


def test_raid1_declared_over_one_disk_is_refused(site_dir: Path) -> None:
    site = site_layout(
        site_dir,
        "compute",
        """
os_disks: {count: 1, raid: raid1}
boot: {size: 1 GiB}
volumes: [{mount: /, name: root, size: 4 GiB}]
""",
    )
    with pytest.raises(LayoutError, match=r"^node cmp1: layout 'compute': os_disks.raid is raid1"):
        plan_for(site, site.node("cmp1"))


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (
            "volumes: [{mount: /, name: root, size: 4 GiB}]",
            "node cmp2: layout 'compute': no /boot (add a boot: section)",
        ),
        (
            "boot: {size: 1 GiB}\nvolumes: [{mount: /var, name: var, size: 4 GiB}]",
            "node cmp2: layout 'compute': no / volume",
        ),
        (
            "boot: {size: 1 GiB}\nvolumes: [{mount: /, name: a, size: 4 GiB},"
            " {mount: /, name: b, size: 4 GiB}]",
            "node cmp2: layout 'compute': two volumes mount /",
        ),
        (
            "boot: {size: 1 GiB}\nvolumes: [{mount: /, name: root, size: 4 GiB},"
            " {mount: /boot, name: a, size: 4 GiB}]",
            "node cmp2: layout 'compute': two volumes mount /boot",
        ),
    ],
)
def test_missing_or_doubled_file_systems(site_dir: Path, layout: str, message: str) -> None:
    site = site_layout(site_dir, "compute", layout)
    with pytest.raises(LayoutError) as err:
        plan_for(site, site.node("cmp2"))
    assert str(err.value) == message


def test_sizes_that_cannot_fit_the_disk_hints(site_dir: Path) -> None:
    site = load_site(site_dir / "site.yaml")
    node = with_disks(site.node("ctl3"), count=2, min_size_gb=10)
    with pytest.raises(LayoutError) as err:
        plan_for(site, node)
    assert str(err.value) == (
        "node ctl3: layout 'controller': needs 16010 MiB on each OS disk, "
        "but disks.min_size_gb 10 GB is only 9536 MiB"
    )


def test_the_kickstart_is_not_rendered_for_a_broken_layout(site_dir: Path) -> None:
    site = site_layout(site_dir, "network", "volumes: [{mount: /, name: root, size: 4 GiB}]")
    with pytest.raises(LayoutError, match=r"^node net1: layout 'network': no /boot"):
        render_kickstart(site, site.node("net1"), token="t", base_url=BASE_URL)


def test_layout_file_errors_name_the_node_and_the_field(site_dir: Path) -> None:
    site = site_layout(site_dir, "compute", "boot: {size: huge}\n")
    with pytest.raises(LayoutError) as err:
        plan_for(site, site.node("cmp1"))
    message = str(err.value)
    assert message.startswith("node cmp1: layout 'compute' (")
    assert "boot.size: Value error, 'huge' is not a size (like 600 MiB or 8 GiB)" in message


def test_unknown_layout_names_the_node(site_dir: Path) -> None:
    path = site_dir / "site.yaml"
    path.write_text(path.read_text().replace("layout: compute", "layout: hpc"))
    site = load_site(path)
    with pytest.raises(LayoutError, match=r"^node cmp1: layout 'hpc': no file layouts/hpc.yaml"):
        plan_for(site, site.node("cmp1"))


def test_cinder_lvm_without_spare_disks(site: Site) -> None:
    node = with_disks(site.node("sto2"), count=1)
    with pytest.raises(
        LayoutError,
        match=r"^node sto2: layout 'storage': the disk plan \(cinder-lvm: 1, swift: rest\) "
        r"needs 1 data disk\(s\), but disks.count 1 leaves 0",
    ):
        plan_for(site, node)


def test_the_disk_plan_decides_which_data_disks_become_the_volume_group(
    site_dir: Path,
) -> None:
    path = site_dir / "site.yaml"
    plan = "{cinder_backend: lvm, disk_plan: {cinder-lvm: 2, swift: rest}}"
    path.write_text(
        path.read_text().replace("{cinder_backend: lvm, cinder_lvm_loss_accepted: true}", plan)
    )
    sto = plan_for(load_site(path), load_site(path).node("sto1"))
    assert sto.data_disks == (1, 2)
    path.write_text(
        path.read_text().replace(plan, "{cinder_backend: rbd, ceph_monitors: [192.0.2.30]}")
    )
    assert plan_for(load_site(path), load_site(path).node("sto1")).data_disks == ()
    path.write_text(
        path.read_text().replace(
            "{cinder_backend: rbd, ceph_monitors: [192.0.2.30]}", "{cinder_backend: nfs}"
        )
    )
    with pytest.raises(InventoryInvalid) as err:
        load_site(path)
    assert [(p.where, p.field) for p in err.value.problems] == [
        ("role storage", "settings.cinder_backend")
    ]


def test_sizes_accept_units() -> None:
    layout = Layout.model_validate(
        {
            "boot": {"size": "1 GiB"},
            "efi_size": "600M",
            "volumes": [{"mount": "/", "name": "root", "size": "1.5G", "max": 4096}],
        }
    )
    assert layout.boot is not None and layout.boot.size == 1024
    assert layout.efi_size == 600 and layout.volumes[0].size == 1536
    assert layout.volumes[0].max == 4096


def _broken(plan: PartitionPlan, **changes: object) -> str:
    with pytest.raises(LayoutError) as err:
        check_plan(replace(plan, **changes))  # type: ignore[arg-type]
    return str(err.value)


def test_plan_check_catches_what_pykickstart_misses(site: Site) -> None:
    """Hand-edited plans (a layout cannot produce these) are refused, naming the node."""
    plan = plan_for(site, site.node("sto1"))
    check_plan(plan)
    where = "node sto1: layout 'storage'"
    lv = plan.volumes[0]
    assert _broken(plan, volumes=(replace(lv, vg="vg_gone"), *plan.volumes[1:])) == (
        f"{where}: volume {lv.name} in missing volume group vg_gone"
    )
    vg = plan.volume_groups[0]
    assert _broken(plan, volume_groups=(replace(vg, pvs=("pv.nowhere",)),)) == (
        f"{where}: volume group vg_os on missing physical volume pv.nowhere"
    )
    log = next(v for v in plan.volumes if v.mount == "/var/log")
    assert _broken(plan, volumes=(*plan.volumes, replace(log, name="root2", mount="/"))) == (
        f"{where}: 2 file systems on / (needs one)"
    )
    assert _broken(plan, volumes=tuple(v for v in plan.volumes if v.mount != "/")) == (
        f"{where}: 0 file systems on / (needs one)"
    )
    part = plan.partitions[-1]
    assert _broken(plan, partitions=(*plan.partitions[:-1], replace(part, disk=7))) == (
        f"{where}: partition {part.name} on disk 7, but the node has 4 disk(s)"
    )
    ctl = plan_for(site, site.node("ctl1"))
    raid = ctl.raids[0]
    assert _broken(ctl, raids=(replace(raid, members=raid.members[:1]), *ctl.raids[1:])) == (
        "node ctl1: layout 'controller': RAID1 /boot/efi has 1 disk"
    )
