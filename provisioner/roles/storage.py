"""Storage node bundle: a Cinder volume backend (LVM or RBD, per the role's settings) and
Swift storage on the disks the partition layout left untouched."""

from __future__ import annotations

from provisioner.errors import RoleConfigError
from provisioner.inventory import Node, Site
from provisioner.roles.common import (
    Bundle,
    DeployFacts,
    int_setting,
    node_context,
    render,
    role_settings,
    str_setting,
)

KIND = "storage"
BACKENDS = ("lvm", "rbd")
NAME = r"[A-Za-z0-9_.-]+"
SWIFT_SERVERS = ("account", "container", "object")


def bundle(site: Site, node: Node, facts: DeployFacts) -> Bundle:
    settings = role_settings(site, node)
    backend = settings.get("cinder_backend", "lvm")
    if backend not in BACKENDS:
        raise RoleConfigError(
            f"node {node.name}: role {node.role} settings.cinder_backend is '{backend}', "
            f"expected one of {', '.join(BACKENDS)}"
        )
    os_disks = int_setting(site, node, "os_disks", 1)
    data_disks = max(0, node.disks.count - os_disks)
    cinder_disks = 1 if backend == "lvm" and data_disks else 0
    common = {
        **node_context(site, node),
        "volume_group": str_setting(site, node, "volume_group", "cinder-volumes", NAME),
    }
    files: Bundle = {
        "cinder/cinder.conf": render(
            KIND,
            "cinder.conf.j2",
            site,
            backend=backend,
            rbd_pool=str_setting(site, node, "rbd_pool", "volumes", NAME),
            rbd_user=str_setting(site, node, "rbd_user", "cinder", NAME),
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
