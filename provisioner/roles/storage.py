"""Storage node bundle: a Cinder volume backend (LVM or RBD, per the role's settings) and
Swift storage on the disks the partition layout left untouched."""

from __future__ import annotations

import json
from typing import Any

from provisioner.errors import RoleConfigError
from provisioner.inventory import Node, Site
from provisioner.inventory.rolesettings import StorageSettings
from provisioner.roles import services
from provisioner.roles.common import (
    Bundle,
    DeployFacts,
    members,
    node_context,
    render,
    settings_of,
)

KIND = "storage"
SWIFT_SERVERS = ("account", "container", "object")
#: OS disks of the bundled storage layout (kickstart/layouts/storage.yaml, os_disks.count);
#: the rest are the data disks the disk plan hands out (a test keeps the two in step)
STORAGE_OS_DISKS = 1
BACKUP_DRIVERS = {
    "lvm": "cinder.backup.drivers.swift.SwiftBackupDriver",
    "rbd": "cinder.backup.drivers.ceph.CephBackupDriver",
}


def swift_disks(site: Site, node: Node) -> int:
    """How many Swift disks the node's disk plan gives it (0 when its disks are too few:
    the kickstart and prepare-disks.sh refuse that node anyway)."""
    settings = settings_of(site, node, StorageSettings)
    uses = settings.plan.assign(max(0, node.disks.count - STORAGE_OS_DISKS))
    return (uses or ()).count("swift")


def ring_data(site: Site, node: Node) -> dict[str, Any]:
    """Swift's rings as data: every storage node is its own zone (its own failure domain),
    each of its Swift disks (``d1``..``dN``, as prepare-disks.sh names their mounts) one
    device of weight 100, in every ring."""
    settings = settings_of(site, node, StorageSettings)
    nodes = members(site, node)
    rings = []
    for server in SWIFT_SERVERS:
        port = services.BY_NAME[f"swift-{server}"].port
        devices = [
            {
                "region": 1,
                "zone": zone,
                "ip": str(n.ip),
                "port": port,
                "device": f"d{d}",
                "weight": 100,
                "node": n.name,
            }
            for zone, n in enumerate(nodes, 1)
            for d in range(1, swift_disks(site, n) + 1)
        ]
        rings.append({"name": server, "devices": devices})
    count = len(rings[0]["devices"])
    replicas = settings.swift_replicas or min(3, count)
    if count < replicas:
        raise RoleConfigError(
            f"node {node.name}: role {node.role} settings.swift_replicas is "
            f"{settings.swift_replicas}, but the disk plans of the storage nodes give Swift "
            f"{count} disk(s) in all"
        )
    return {
        "part_power": settings.swift_part_power,
        "replicas": replicas,
        "min_part_hours": 1,
        "rings": rings,
    }


def bundle(site: Site, node: Node, facts: DeployFacts) -> Bundle:
    settings = settings_of(site, node, StorageSettings)
    backend = settings.cinder_backend
    plan = settings.plan
    common = {
        **node_context(site, node),
        "volume_group": settings.volume_group,
        "cluster": settings.ceph_cluster,
    }
    files: Bundle = {
        "cinder/cinder.conf": render(
            KIND,
            "cinder.conf.j2",
            site,
            backend=backend,
            rbd_pool=settings.rbd_pool,
            rbd_user=settings.rbd_user,
            backup_driver=BACKUP_DRIVERS[backend],
            **common,
        ),
        "storage/prepare-disks.sh": render(
            KIND,
            "prepare-disks.sh.j2",
            site,
            plan=plan,
            counts=plan.counts(),
            **common,
        ),
    }
    rings = ring_data(site, node)
    if rings["replicas"]:  # no Swift disk in any plan: no rings to build
        files["swift/rings.json"] = json.dumps(rings, indent=2) + "\n"
        files["swift/build-rings.sh"] = render(KIND, "build-rings.sh.j2", site, **rings, **common)
    if backend == "rbd":
        if not settings.ceph_monitors:
            raise RoleConfigError(
                f"node {node.name}: role {node.role} settings.ceph_monitors is empty, but "
                "cinder_backend is rbd (the Ceph client needs its monitors)"
            )
        files[f"ceph/{settings.ceph_cluster}.conf"] = render(
            KIND,
            "ceph.conf.j2",
            site,
            monitors=[str(m) for m in settings.ceph_monitors],
            user=settings.rbd_user,
            **common,
        )
    files["swift/proxy-server.conf"] = render(KIND, "swift-proxy-server.conf.j2", site, **common)
    for server in SWIFT_SERVERS:
        files[f"swift/{server}-server.conf"] = render(
            KIND, "swift-server.conf.j2", site, server=server, **common
        )
    return files
