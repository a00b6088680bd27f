"""Compute node bundle: nova-compute and the Neutron L2 agent, pointed at the controllers."""

from __future__ import annotations

from provisioner.inventory import Node, Site
from provisioner.roles.common import (
    Bundle,
    DeployFacts,
    controller_vip,
    controllers,
    render,
    role_settings,
)

KIND = "compute"


def bundle(site: Site, node: Node, facts: DeployFacts) -> Bundle:
    settings = role_settings(site, node)
    common = {
        "node": node,
        "controllers": controllers(site),
        "vip": controller_vip(site, node.name),
    }
    return {
        "nova/nova-compute.conf": render(KIND, "nova-compute.conf.j2", site, **common),
        "neutron/neutron.conf.d/l2-agent.conf": render(KIND, "neutron-l2.conf.j2", site, **common),
        "neutron/openvswitch_agent.ini": render(
            KIND,
            "openvswitch_agent.ini.j2",
            site,
            bridge_mappings=settings.get("bridge_mappings", "physnet1:br-ex"),
            **common,
        ),
    }
