"""Controller HA bundle: HAProxy + keepalived on the API VIP, Galera, RabbitMQ, memcached,
Pacemaker/Corosync for the services without native HA."""

from __future__ import annotations

import json
import re
from ipaddress import IPv4Network
from typing import Any
from urllib.parse import urlsplit

from provisioner.errors import RoleConfigError
from provisioner.inventory import Node, Site
from provisioner.inventory.rolesettings import ControllerSettings, StorageSettings
from provisioner.roles import network, services
from provisioner.roles.common import (
    Bundle,
    DeployFacts,
    controller_vip,
    controllers,
    members_of_kind,
    node_context,
    node_interface,
    render,
    settings_of,
    vrrp_router_id,
)

KIND = "controller"
PRIORITY_TOP = 150
PRIORITY_STEP = 10


def vrrp_priority(site: Site, node: Node) -> int:
    """Highest for the first controller in name order, 10 less for each next one."""
    names = [c.name for c in controllers(site)]
    return PRIORITY_TOP - PRIORITY_STEP * names.index(node.name)


def galera_bootstraps(site: Site, node: Node, facts: DeployFacts) -> tuple[bool, str]:
    """Whether this node starts a new Galera cluster, and why.

    Exactly one node bootstraps, and only on the cluster's first deployment: the
    first controller in name order, when it never was active before and no other
    controller is running. Everyone else (and any reprovisioned member) joins.
    A full rebuild (every controller wiped) sets the controller role's
    ``settings.galera_new_cluster: true`` for that rebuild; even then a node
    never bootstraps while another controller is active.
    """
    first = controllers(site)[0].name
    rebuild = settings_of(site, node, ControllerSettings).galera_new_cluster
    if facts.cluster_running:
        running = ", ".join(facts.running_members)
        return False, f"cluster running on {running}: joins it"
    if not facts.first_deployment and not rebuild:
        return False, "reprovisioned member: joins the running cluster"
    if node.name != first:
        return False, f"new cluster: {first} bootstraps, this node joins"
    if rebuild and not facts.first_deployment:
        return True, "full rebuild (galera_new_cluster) and no controller active: bootstraps"
    return True, "first deployment of the cluster: this node bootstraps it"


def _prefix(site: Site, node_name: str, vip: Any) -> int:
    cidr: IPv4Network = site.network.cidr
    if vip not in cidr:
        raise RoleConfigError(f"node {node_name}: VIP {vip} is outside the network {cidr}")
    return cidr.prefixlen


def fence_password_scripts(site: Site, node: Node, ctls: list[Node]) -> dict[str, str]:
    """The ``password_script`` of each controller's fence device: ``settings.fence_password_script``
    with ``{node}`` replaced by the fenced controller's name (default
    ``/etc/provisioner/fence/{node}.password``), so every BMC can have its own password.

    A path without ``{node}`` is one script for every device: accepted only while every
    controller's ``bmc.password`` is the same secret, else an error naming the field."""
    pattern = settings_of(site, node, ControllerSettings).fence_password_script
    if "{node}" not in pattern and len({c.bmc.password for c in ctls}) > 1:
        raise RoleConfigError(
            f"node {node.name}: role {node.role} settings.fence_password_script {pattern!r} is "
            "one script for every fence device, but the controllers' bmc.password differ: "
            "put {node} in the path"
        )
    return {c.name: pattern.replace("{node}", c.name) for c in ctls}


def fence_devices(site: Site, node: Node, ctls: list[Node]) -> list[dict[str, Any]]:
    """One Pacemaker fence device per controller, with the agent of its BMC's protocol:
    ``fence_redfish`` for a Redfish BMC (TLS unless its address is an http:// URL,
    certificate checks as ``bmc.verify_tls`` says), ``fence_ipmilan`` (IPMI over LAN+)
    for the others. The password never appears: each device runs its own script."""
    scripts = fence_password_scripts(site, node, ctls)
    devices = []
    for c in ctls:
        bmc = c.bmc
        host = urlsplit(bmc.address).hostname if "://" in bmc.address else bmc.address
        attributes: list[tuple[str, str]] = [
            ("ip", str(host)),
            ("ipport", str(bmc.effective_port)),
            ("username", bmc.user),
            ("password_script", scripts[c.name]),
        ]
        if bmc.driver == "redfish":
            agent = "fence_redfish"
            if not bmc.address.startswith("http://"):
                attributes.append(("ssl", "1"))
                if not bmc.verify_tls:
                    attributes.append(("ssl_insecure", "1"))
        else:
            agent = "fence_ipmilan"
            attributes.append(("lanplus", "1"))
        attributes.append(("pcmk_host_list", c.name))
        devices.append(
            {"node": c.name, "driver": bmc.driver, "agent": agent, "attributes": attributes}
        )
    return devices


def _pacemaker_resources(units: list[str]) -> list[dict[str, str]]:
    return [{"id": re.sub(r"[^A-Za-z0-9-]", "-", unit), "service": unit} for unit in units]


def haproxy_frontends(site: Site, settings: ControllerSettings) -> list[dict[str, Any]]:
    """One frontend per service of the table behind the VIP, its backends the nodes of the
    service's placement (a placement without nodes, or a service the site does not place,
    leaves the service out)."""
    frontends = []
    for svc in services.vip_services():
        if svc.enabled_by and not getattr(settings, svc.enabled_by):
            continue
        servers = members_of_kind(site, svc.placement)
        if not servers:
            continue
        frontends.append(
            {
                "id": services.ident(svc.name),
                "service": svc,
                "servers": servers,
                "one_writer": svc.ha == "haproxy-one-writer",
            }
        )
    return frontends


GLANCE_LOCAL = "/var/lib/glance/images"


def glance_store(node: Node, settings: ControllerSettings, ceph_cluster: str) -> dict[str, str]:
    """Glance's store as the role's settings state it: Swift or RBD (replicated), or a file
    store on a path every controller mounts. Unset, images stay on each controller's own
    disk: an image uploaded through one controller is missing on the others (validate
    warns)."""
    store = settings.glance_store
    if store == "file" and not settings.glance_shared_path:
        raise RoleConfigError(
            f"node {node.name}: role {node.role} settings.glance_store is file but "
            "settings.glance_shared_path (the filesystem every controller mounts) is not set"
        )
    notes = {
        "swift": "Swift (replicated across the storage nodes)",
        "rbd": f"Ceph RBD pool {settings.glance_rbd_pool} (replicated by Ceph)",
        "file": f"{settings.glance_shared_path}, a filesystem every controller mounts",
        None: f"{GLANCE_LOCAL} on this controller only: NOT shared (set glance_store)",
    }
    return {
        "store": store or "file",
        "store_note": notes[store],
        "datadir": settings.glance_shared_path or GLANCE_LOCAL,
        "rbd_pool": settings.glance_rbd_pool,
        "rbd_user": settings.glance_rbd_user,
        "ceph_cluster": ceph_cluster,
    }


def octavia_files(site: Site, settings: ControllerSettings, common: dict[str, Any]) -> Bundle:
    """Octavia's API, worker and housekeeping when the site places them here
    (``settings.octavia``); their health managers are on the network nodes."""
    if not settings.octavia:
        return {}
    return {
        "octavia/octavia.conf": render(
            KIND,
            "octavia.conf.j2",
            site,
            health_managers=network.health_managers(site),
            **common,
        )
    }


def _ceph_cluster(site: Site) -> str:
    for name in sorted(site.roles):
        storage = site.role_settings(name)
        if isinstance(storage, StorageSettings) and storage.ceph_monitors:
            return storage.ceph_cluster
    return "ceph"


def glance_ceph_client(site: Site, node: Node, settings: ControllerSettings) -> Bundle:
    """With ``glance_store: rbd``, the controllers' Ceph client: the monitors and cluster
    name the storage role states (one source for every Ceph client of the site)."""
    if settings.glance_store != "rbd":
        return {}
    for name in sorted(site.roles):
        storage = site.role_settings(name)
        if isinstance(storage, StorageSettings) and storage.ceph_monitors:
            text = render(
                "storage",
                "ceph.conf.j2",
                site,
                **node_context(site, node),
                cluster=storage.ceph_cluster,
                monitors=[str(m) for m in storage.ceph_monitors],
                user=settings.glance_rbd_user,
            )
            return {f"ceph/{storage.ceph_cluster}.conf": text}
    raise RoleConfigError(
        f"node {node.name}: role {node.role} settings.glance_store is rbd, but no storage "
        "role states ceph_monitors"
    )


def api_files(
    site: Site, node: Node, settings: ControllerSettings, common: dict[str, Any]
) -> Bundle:
    """The APIs' own HA settings: database through the VIP, every controller's memcached
    and RabbitMQ, keystone_authtoken through the VIP, listening on the node's address."""
    net_nodes, net = network.network_settings(site)
    max_l3, dhcp = network.agent_counts(len(net_nodes)) if net_nodes else (1, 1)
    memcached = [f"{c.ip}:{services.BY_NAME['memcached'].port}" for c in common["controllers"]]
    return {
        "keystone/keystone.conf": render(KIND, "keystone.conf.j2", site, **common),
        "glance/glance-api.conf": render(
            KIND,
            "glance-api.conf.j2",
            site,
            **glance_store(node, settings, _ceph_cluster(site)),
            **common,
        ),
        **glance_ceph_client(site, node, settings),
        "heat/heat.conf": render(KIND, "heat.conf.j2", site, **common),
        "cinder/cinder.conf": render(KIND, "cinder-api.conf.j2", site, **common),
        "nova/nova.conf": render(KIND, "nova.conf.j2", site, **common),
        "placement/placement.conf": render(KIND, "placement.conf.j2", site, **common),
        "neutron/neutron.conf": render(
            KIND,
            "neutron-server.conf.j2",
            site,
            service_plugins=network.server_plugins(net),
            max_l3_agents=net.max_l3_agents_per_router or max_l3,
            dhcp_agents=net.dhcp_agents_per_network or dhcp,
            **common,
        ),
        "horizon/local_settings.py": render(
            KIND,
            "horizon-local_settings.py.j2",
            site,
            allowed_hosts=[str(common["vip"]), str(node.ip), site.fqdn(node)],
            memcached_locations=memcached,
            **common,
        ),
        **octavia_files(site, settings, common),
        "neutron/neutron.conf.d/service-providers.conf": render(
            KIND,
            "neutron-service-providers.conf.j2",
            site,
            providers=network.service_providers(net),
            **common,
        ),
        "apache/openstack-listen.conf": render(
            KIND, "apache-listen.conf.j2", site, wsgi=services.wsgi_services(KIND), **common
        ),
    }


def bundle(site: Site, node: Node, facts: DeployFacts) -> Bundle:
    ctls = controllers(site)
    if node.name not in [c.name for c in ctls]:
        raise RoleConfigError(f"node {node.name}: not a controller")
    settings = settings_of(site, node, ControllerSettings)
    vip = controller_vip(site, node.name)
    cluster_name = f"{site.site.name}-controllers"
    common = {**node_context(site, node), "cluster_name": cluster_name}
    family = common["os"]
    bootstrap, decision = galera_bootstraps(site, node, facts)
    files: Bundle = {
        "haproxy/haproxy.cfg": render(
            KIND, "haproxy.cfg.j2", site, frontends=haproxy_frontends(site, settings), **common
        ),
        "keepalived/keepalived.conf": render(
            KIND,
            "keepalived.conf.j2",
            site,
            interface=node_interface(site, node),
            instance="VI_API",
            router_id=vrrp_router_id(vip),
            priority=vrrp_priority(site, node),
            peers=[c for c in ctls if c.name != node.name],
            prefix=_prefix(site, node.name, vip),
            check_script=settings.vrrp_check_script,
            check_weight=PRIORITY_STEP * len(ctls) + 10,
            **common,
        ),
        "sysctl/60-provisioner-vip.conf": render(KIND, "sysctl-vip.conf.j2", site, **common),
        "mysql/galera.cnf": render(KIND, "galera.cnf.j2", site, **common),
        "galera/galera-start.sh": render(
            KIND, "galera-start.sh.j2", site, bootstrap=bootstrap, decision=decision, **common
        ),
        "rabbitmq/rabbitmq.conf": render(
            KIND,
            "rabbitmq.conf.j2",
            site,
            default_queue_type=settings.rabbitmq_default_queue_type,
            **common,
        ),
        "openstack/oslo-messaging.conf": render(KIND, "oslo-messaging.conf.j2", site, **common),
        family.memcached_bundle: render(
            KIND,
            family.memcached_template,
            site,
            memory_mb=settings.memcached_memory_mb,
            **common,
        ),
        "corosync/corosync.conf": render(
            KIND,
            "corosync.conf.j2",
            site,
            keyfile=settings.corosync_keyfile,
            **common,
        ),
        "pacemaker/cib.xml": render(
            KIND,
            "cib.xml.j2",
            site,
            resources=_pacemaker_resources(settings.pacemaker_services),
            fence_devices=fence_devices(site, node, ctls),
            **common,
        ),
        **api_files(site, node, settings, common),
        "galera/decision.json": json.dumps(
            {"node": node.name, "bootstrap": bootstrap, "why": decision}, indent=2
        )
        + "\n",
    }
    return files
