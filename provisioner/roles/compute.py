"""Compute node bundle: nova-compute and the Neutron L2 agent, pointed at the controllers."""

from __future__ import annotations

from provisioner.inventory import Node, Site
from provisioner.inventory.rolesettings import ComputeSettings
from provisioner.roles.common import Bundle, DeployFacts, node_context, render, settings_of

KIND = "compute"


def bundle(site: Site, node: Node, facts: DeployFacts) -> Bundle:
    common = node_context(site, node)
    return {
        "nova/nova-compute.conf": render(KIND, "nova-compute.conf.j2", site, **common),
        "neutron/neutron.conf.d/l2-agent.conf": render(KIND, "neutron-l2.conf.j2", site, **common),
        "neutron/openvswitch_agent.ini": render(
            KIND,
            "openvswitch_agent.ini.j2",
            site,
            bridge_mappings=settings_of(site, node, ComputeSettings).bridge_mappings,
            **common,
        ),
    }
