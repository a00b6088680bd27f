"""Network node bundle: Neutron L3 HA (VRRP routers), DHCP agents per network, metadata."""

from __future__ import annotations

from provisioner.errors import RoleConfigError
from provisioner.inventory import Node, Site
from provisioner.inventory.rolesettings import NetworkSettings
from provisioner.roles import services
from provisioner.roles.common import (
    Bundle,
    DeployFacts,
    members,
    members_of_kind,
    node_context,
    render,
    settings_of,
)

KIND = "network"


def agent_counts(n_nodes: int) -> tuple[int, int]:
    """(max L3 agents per router, DHCP agents per network). Neutron has no minimum any more
    (``min_l3_agents_per_router`` was removed): an HA router is created on whatever agents
    are alive, so the redundancy check belongs to ``validate``."""
    if n_nodes < 1:
        raise RoleConfigError("role network: no network nodes")
    return min(3, n_nodes), min(3, n_nodes)


def network_settings(site: Site) -> tuple[list[Node], NetworkSettings]:
    """The network nodes and their role's settings (the first network-kind role in name
    order): what Neutron server on the controllers schedules agents and extensions by."""
    nodes = members_of_kind(site, KIND)
    for name in sorted(site.roles):
        if site.role_kind(name) == KIND:
            settings = site.role_settings(name)
            assert isinstance(settings, NetworkSettings)
            return nodes, settings
    return nodes, NetworkSettings()


def server_plugins(settings: NetworkSettings) -> list[str]:
    """Neutron server's service plugins: HA routers, and the VPN and firewall services the
    network nodes' L3 agents carry as extensions."""
    plugins = ["router"]
    if settings.vpnaas:
        plugins.append("vpnaas")
    if settings.fwaas:
        plugins.append("firewall_v2")
    return plugins


VPN_PROVIDER = "VPN:strongswan:neutron_vpnaas.services.vpn.service_drivers.ipsec.IPsecVPNDriver"
FW_PROVIDER = (
    "FIREWALL_V2:fwaas_db:neutron_fwaas.services.firewall.service_drivers.agents.agents."
    "FirewallAgentDriver"
)


def service_providers(settings: NetworkSettings) -> list[str]:
    """Neutron server's drivers for the extensions the L3 agents carry (the default ones)."""
    providers = []
    if settings.vpnaas:
        providers.append(f"{VPN_PROVIDER}:default")
    if settings.fwaas:
        providers.append(f"{FW_PROVIDER}:default")
    return providers


def l3_extensions(settings: NetworkSettings) -> list[str]:
    return [name for name, on in (("vpnaas", settings.vpnaas), ("fwaas_v2", settings.fwaas)) if on]


def health_managers(site: Site) -> list[str]:
    """``ip:port`` of every network node running Octavia's health manager."""
    nodes, settings = network_settings(site)
    port = services.BY_NAME["octavia-health-manager"].port
    return [f"{n.ip}:{port}" for n in nodes] if settings.octavia_health_manager else []


def vrrp_auth_password(site: Site, node: Node) -> str:
    """The password of the HA routers' VRRP (``ha_vrrp_auth_type = PASS``), shared by every
    network node: role setting ``ha_vrrp_auth_password`` (a secret reference), by default
    generated once into the site's ``secrets/neutron-l3-ha-vrrp-password``.

    The L3 agent reads it only from its config, so it is the one secret a network bundle
    carries: in ``secrets/`` (mode 0600 in the store, see provisioner/roles/bundles.py)."""
    ref = settings_of(site, node, NetworkSettings).ha_vrrp_auth_password
    owner = f"node {node.name}: role {node.role} settings.ha_vrrp_auth_password"
    return site.secret(ref, owner).get_secret_value()


def bundle(site: Site, node: Node, facts: DeployFacts) -> Bundle:
    nodes = members(site, node)
    max_l3, dhcp = agent_counts(len(nodes))
    settings = settings_of(site, node, NetworkSettings)
    common = {
        **node_context(site, node),
        "members": nodes,
        "dhcp_agents": settings.dhcp_agents_per_network or dhcp,
    }
    files = {
        "neutron/neutron.conf.d/l3-ha.conf": render(
            KIND,
            "neutron-l3-ha.conf.j2",
            site,
            max_l3_agents=settings.max_l3_agents_per_router or max_l3,
            l3_ha_net_cidr=str(settings.l3_ha_net_cidr),
            **common,
        ),
        "neutron/l3_agent.ini": render(
            KIND,
            "l3_agent.ini.j2",
            site,
            settings=settings,
            extensions=l3_extensions(settings),
            **common,
        ),
        "neutron/neutron.conf.d/l2-agent.conf": render(
            "compute", "neutron-l2.conf.j2", site, **common
        ),
        "neutron/openvswitch_agent.ini": render(
            "compute",
            "openvswitch_agent.ini.j2",
            site,
            bridge_mappings=settings.bridge_mappings,
            **common,
        ),
        "neutron/dhcp_agent.ini": render(KIND, "dhcp_agent.ini.j2", site, **common),
        "neutron/metadata_agent.ini": render(KIND, "metadata_agent.ini.j2", site, **common),
        "secrets/neutron-l3-ha-vrrp.conf": render(
            KIND,
            "l3-ha-vrrp-secret.conf.j2",
            site,
            password=vrrp_auth_password(site, node),
            **common,
        ),
    }
    if settings.octavia_health_manager:
        files["octavia/octavia-health-manager.conf"] = render(
            KIND,
            "octavia-health-manager.conf.j2",
            site,
            health_managers=health_managers(site),
            **common,
        )
    return files
