"""An Ansible inventory in kolla-ansible's multinode format, from the site inventory.

Top-level groups (control, network, compute, storage, monitoring, deployment) hold
the hosts; service groups are ``:children`` of them, the way kolla-ansible's
``multinode`` example file lays them out. HAProxy and keepalived run on the
controllers (as in our controller bundle), not on the network nodes.
"""

from __future__ import annotations

from provisioner.inventory import Site
from provisioner.roles.common import controller_vip

#: kolla group -> our role kind
HOST_GROUPS: dict[str, str] = {
    "control": "controller",
    "network": "network",
    "compute": "compute",
    "storage": "storage",
    "monitoring": "controller",
}

#: service group -> its parent groups
SERVICE_GROUPS: dict[str, tuple[str, ...]] = {
    "baremetal": ("control", "network", "compute", "storage", "monitoring"),
    "tls-backend": ("control",),
    "common": ("control", "network", "compute", "storage", "monitoring"),
    "loadbalancer": ("control",),
    "mariadb": ("control",),
    "rabbitmq": ("control",),
    "memcached": ("control",),
    "keystone": ("control",),
    "glance": ("control",),
    "nova": ("control",),
    "placement": ("control",),
    "neutron": ("network",),
    "cinder": ("control",),
    "heat": ("control",),
    "horizon": ("control",),
    "swift": ("control",),
    "placement-api": ("placement",),
    "glance-api": ("glance",),
    "keystone-api": ("keystone",),
    "nova-api": ("nova",),
    "nova-scheduler": ("nova",),
    "nova-conductor": ("nova",),
    "nova-novncproxy": ("nova",),
    "nova-compute": ("compute",),
    "neutron-server": ("control",),
    "neutron-dhcp-agent": ("neutron",),
    "neutron-l3-agent": ("neutron",),
    "neutron-metadata-agent": ("neutron",),
    "neutron-openvswitch-agent": ("network", "compute"),
    "cinder-api": ("cinder",),
    "cinder-scheduler": ("cinder",),
    "cinder-volume": ("storage",),
    "cinder-backup": ("storage",),
    "swift-proxy-server": ("swift",),
    "swift-account-server": ("storage",),
    "swift-container-server": ("storage",),
    "swift-object-server": ("storage",),
    "heat-api": ("heat",),
    "heat-api-cfn": ("heat",),
    "heat-engine": ("heat",),
}


def multinode_inventory(site: Site, ansible_user: str = "root") -> str:
    lines = [f"# kolla-ansible multinode inventory for site {site.site.name} (generated)"]
    for group, kind in HOST_GROUPS.items():
        lines.append(f"[{group}]")
        for node in sorted(site.nodes_of_kind(kind), key=lambda n: n.name):
            lines.append(f"{node.name} ansible_host={node.ip} ansible_user={ansible_user}")
        lines.append("")
    lines += ["[deployment]", "localhost ansible_connection=local", ""]
    for group, parents in SERVICE_GROUPS.items():
        lines += [f"[{group}:children]", *parents, ""]
    lines += [
        "[all:vars]",
        f"kolla_internal_vip_address={controller_vip(site)}",
        "om_enable_rabbitmq_quorum_queues=true",
        "",
    ]
    return "\n".join(lines)
