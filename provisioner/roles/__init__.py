"""Role-specific HA configuration bundles, generated from the inventory.

One module per role kind, each with ``bundle(site, node, facts) -> {path: text}``:
pure functions, no I/O besides reading templates. Writing a bundle to disk and
delivering it to the node is done elsewhere (provisioner.roles.bundles).
"""

from __future__ import annotations

from collections.abc import Callable

from provisioner.errors import RoleConfigError
from provisioner.inventory import Node, Site
from provisioner.roles import apply, compute, controller, network, storage
from provisioner.roles.common import Bundle, DeployFacts

GENERATORS: dict[str, Callable[[Site, Node, DeployFacts], Bundle]] = {
    "controller": controller.bundle,
    "network": network.bundle,
    "storage": storage.bundle,
    "compute": compute.bundle,
}


def generate(site: Site, node_name: str, facts: DeployFacts) -> Bundle:
    """The HA bundle of one node, by its role's kind."""
    node = site.node(node_name)
    if node.role not in site.roles:
        raise RoleConfigError(f"node {node.name}: role '{node.role}' is not defined in roles")
    kind = site.role_kind(node.role)
    return {**GENERATORS[kind](site, node, facts), **apply.files(site, node, kind, facts)}


__all__ = ["GENERATORS", "Bundle", "DeployFacts", "RoleConfigError", "generate"]
