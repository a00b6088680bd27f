"""Network node bundle: Neutron L3 HA (VRRP routers), DHCP agents per network, metadata."""

from __future__ import annotations

from provisioner.errors import RoleConfigError
from provisioner.inventory import Node, Site
from provisioner.roles.common import (
    Bundle,
    DeployFacts,
    int_setting,
    members,
    node_context,
    render,
    str_setting,
)

KIND = "network"


def agent_counts(n_nodes: int) -> tuple[int, int, int]:
    """(max L3 agents per router, min L3 agents per router, DHCP agents per network)."""
    if n_nodes < 1:
        raise RoleConfigError("role network: no network nodes")
    return min(3, n_nodes), min(2, n_nodes), min(3, n_nodes)


def bundle(site: Site, node: Node, facts: DeployFacts) -> Bundle:
    nodes = members(site, node)
    max_l3, min_l3, dhcp = agent_counts(len(nodes))
    common = {
        **node_context(site, node),
        "members": nodes,
        "dhcp_agents": int_setting(site, node, "dhcp_agents_per_network", dhcp, minimum=1),
    }
    return {
        "neutron/neutron.conf.d/l3-ha.conf": render(
            KIND,
            "neutron-l3-ha.conf.j2",
            site,
            max_l3_agents=int_setting(site, node, "max_l3_agents_per_router", max_l3, minimum=1),
            min_l3_agents=int_setting(site, node, "min_l3_agents_per_router", min_l3, minimum=1),
            l3_ha_net_cidr=str_setting(
                site, node, "l3_ha_net_cidr", "169.254.192.0/18", r"[0-9.]+/\d{1,2}"
            ),
            **common,
        ),
        "neutron/l3_agent.ini": render(KIND, "l3_agent.ini.j2", site, **common),
        "neutron/dhcp_agent.ini": render(KIND, "dhcp_agent.ini.j2", site, **common),
        "neutron/metadata_agent.ini": render(KIND, "metadata_agent.ini.j2", site, **common),
    }
