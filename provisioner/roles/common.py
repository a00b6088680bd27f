"""What every role generator shares: cluster facts, members, VIPs and template rendering.

Generators are pure: they take the inventory and the facts of this deployment and
return a bundle (relative path -> file text). Templates are data in
hooks/<kind>/templates/ (a site's own copy of a template takes precedence).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any, TypeVar

from provisioner.errors import RoleConfigError
from provisioner.inventory import Node, Site
from provisioner.inventory.rolesettings import ControllerSettings, RoleSettings
from provisioner.roles import services
from provisioner.roles.osfamily import os_family
from provisioner.templating import environment

Bundle = dict[str, str]


@dataclass(frozen=True)
class DeployFacts:
    """What the store knows about this deployment (the hook context carries it)."""

    #: the node never reached ACTIVE before: not a reprovision of an existing member
    first_deployment: bool = True
    #: other members of the node's role that are ACTIVE right now
    running_members: tuple[str, ...] = field(default_factory=tuple)

    @property
    def cluster_running(self) -> bool:
        return bool(self.running_members)

    @classmethod
    def from_context(cls, context: dict[str, Any]) -> DeployFacts:
        running = tuple(m["name"] for m in context.get("members", []) if m.get("state") == "active")
        return cls(bool(context.get("first_deployment", True)), running)


S = TypeVar("S", bound=RoleSettings)


def settings_of(site: Site, node: Node, model: type[S]) -> S:
    """The node's role settings as ``model`` (the typed model of the role's kind,
    provisioner/inventory/rolesettings.py): checked once, by ``validate`` or here."""
    try:
        settings = site.role_settings(node.role)
    except RoleConfigError as exc:
        raise RoleConfigError(f"node {node.name}: {exc}") from None
    if not isinstance(settings, model):
        raise RoleConfigError(
            f"node {node.name}: role {node.role} is of kind {site.role_kind(node.role)}, "
            f"not the kind whose settings are {model.__name__}"
        )
    return settings


def members(site: Site, node: Node) -> list[Node]:
    """Every node of the node's role kind (itself included), in name order."""
    return sorted(site.nodes_of_kind(site.role_kind(node.role)), key=lambda n: n.name)


def members_of_kind(site: Site, kind: str) -> list[Node]:
    """Every node of a role kind, in name order (possibly none)."""
    return sorted(site.nodes_of_kind(kind), key=lambda n: n.name)


def controllers(site: Site) -> list[Node]:
    nodes = sorted(site.nodes_of_kind("controller"), key=lambda n: n.name)
    if not nodes:
        raise RoleConfigError("site: no controller nodes in the inventory")
    return nodes


def controller_vip(site: Site, node_name: str = "") -> IPv4Address:
    """The API VIP of the (first) controller role."""
    for role_name in sorted(site.roles):
        if site.role_kind(role_name) == "controller" and site.roles[role_name].ha.vips:
            return site.roles[role_name].ha.vips[0].address
    who = f"node {node_name}: " if node_name else ""
    raise RoleConfigError(f"{who}roles: no controller role has ha.vips (the API VIP)")


def vrrp_router_id(address: IPv4Address) -> int:
    """A VRRP router id (1-255) derived from the VIP, stable across renders."""
    return int(address) % 255 + 1


def render(kind: str, template: str, site: Site, **values: Any) -> str:
    """Render hooks/<kind>/templates/<template> (site copy first), in the project's
    sandboxed Jinja2 environment (``provisioner.templating``)."""
    paths = [p / kind / "templates" for p in site.content_paths().search_path("hooks")]
    return environment(paths).get_template(template).render(**values)


def node_context(site: Site, node: Node) -> dict[str, Any]:
    """What every role's templates are given: the node, the controllers, their VIP, and
    ``url.<service>`` / ``port.<service>`` from the services table (provisioner.roles.services):
    a template names a service, never a port."""
    vip = controller_vip(site, node.name)
    ctls = controllers(site)
    return {
        "node": node,
        "controllers": ctls,
        "vip": vip,
        "os": os_family(site, node),
        "url": services.urls(vip),
        "port": services.ports(),
        "ha": ha_endpoints(vip, ctls),
    }


def ha_endpoints(vip: IPv4Address, ctls: list[Node]) -> dict[str, Any]:
    """What every OpenStack service's HA settings name, built once here so no file can list
    fewer RabbitMQ or memcached nodes than another:

    - ``transport_url``: every controller's RabbitMQ (the client fails over between them);
    - ``memcached_servers``: every controller's memcached (oslo.cache and keystonemiddleware
      hash keys over all of them; a lost one costs cache misses, not errors);
    - ``db(name)``: the database through the VIP (HAProxy sends it to one Galera writer).
      The URL carries no password: PyMySQL reads it from the ``[client]`` section of
      ``/etc/provisioner/db/<name>.cnf`` on the node (``read_default_file``), so a bundle
      holds no database secret."""
    rabbit, memcached, galera = (
        services.BY_NAME[n].port for n in ("rabbitmq", "memcached", "galera")
    )

    def db(name: str) -> str:
        return (
            f"mysql+pymysql://{name}@{vip}:{galera}/{name}"
            f"?read_default_file={DB_CLIENT_DIR}/{name}.cnf"
        )

    return {
        "transport_url": "rabbit://" + ",".join(f"openstack@{c.ip}:{rabbit}" for c in ctls) + "/",
        "memcached_servers": ",".join(f"{c.ip}:{memcached}" for c in ctls),
        "db": db,
    }


#: where each node keeps the database password files the connection URLs point at
DB_CLIENT_DIR = "/etc/provisioner/db"


def node_interface(site: Site, node: Node) -> str:
    """The interface holding the node's address: the controller role's
    ``settings.vrrp_interface`` when an operator set one for the whole role, else from the
    site's node (node.network: the bond, else ``interface``; with ``.VLAN`` when tagged).

    Never a guessed default: a VRRP instance on the wrong interface would take the VIP
    nowhere, so a node without either is an error naming both fields."""
    settings = site.role_settings(node.role)
    if isinstance(settings, ControllerSettings) and settings.vrrp_interface:
        return settings.vrrp_interface
    net = node.network
    base = net.bond.name if net.bond else net.interface
    if base is None:
        raise RoleConfigError(
            f"node {node.name}: no interface for the VIP: set the node's network.interface "
            f"(or network.bond), or role {node.role} settings.vrrp_interface"
        )
    return f"{base}.{net.vlan}" if net.vlan else base
