"""Storage node bundle: a Cinder volume backend (LVM or RBD, per the role's settings) and
Swift storage on the disks the partition layout left untouched."""

from __future__ import annotations

from provisioner.inventory import Node, Site
from provisioner.inventory.rolesettings import StorageSettings
from provisioner.roles.common import Bundle, DeployFacts, node_context, render, settings_of

KIND = "storage"
SWIFT_SERVERS = ("account", "container", "object")


def bundle(site: Site, node: Node, facts: DeployFacts) -> Bundle:
    settings = settings_of(site, node, StorageSettings)
    backend = settings.cinder_backend
    os_disks = 1
    data_disks = max(0, node.disks.count - os_disks)
    cinder_disks = 1 if backend == "lvm" and data_disks else 0
    common = {
        **node_context(site, node),
        "volume_group": settings.volume_group,
    }
    files: Bundle = {
        "cinder/cinder.conf": render(
            KIND,
            "cinder.conf.j2",
            site,
            backend=backend,
            rbd_pool=settings.rbd_pool,
            rbd_user=settings.rbd_user,
            **common,
        ),
        "storage/prepare-disks.sh": render(
            KIND,
            "prepare-disks.sh.j2",
            site,
            cinder_disks=cinder_disks,
            expected_data_disks=data_disks,
            **common,
        ),
    }
    files["swift/proxy-server.conf"] = render(KIND, "swift-proxy-server.conf.j2", site, **common)
    for server in SWIFT_SERVERS:
        files[f"swift/{server}-server.conf"] = render(
            KIND, "swift-server.conf.j2", site, server=server, **common
        )
    return files
