"""In which order a rebuild touches nodes, so clustered services stay correct.

First deployment: exactly one controller bootstraps the clusters (Galera,
RabbitMQ, Pacemaker), then the other controllers join. The other roles need no
cluster to install and apply their files, so they go with the bootstrapping
controller (its wave would otherwise leave the machine's other slots idle).
Rolling reprovision of a running cloud: one controller at a time, so the
clusters keep a majority; other roles go in parallel after the controllers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from provisioner.inventory import Site
from provisioner.state.machine import NodeState


def is_first_deployment(site: Site, states: Mapping[str, NodeState | None]) -> bool:
    """No controller has ever been active: the clusters do not exist yet."""
    return not any(states.get(n.name) is NodeState.ACTIVE for n in site.nodes_of_kind("controller"))


def rebuild_waves(
    site: Site, names: Sequence[str], states: Mapping[str, NodeState | None]
) -> list[list[str]]:
    """Group the named nodes into waves; a wave runs concurrently, waves in order."""
    controllers = [n.name for n in site.nodes_of_kind("controller") if n.name in names]
    others = [name for name in names if name not in controllers]
    waves: list[list[str]] = []
    if controllers and is_first_deployment(site, states):
        waves.append([controllers[0], *others])
        if controllers[1:]:
            waves.append(controllers[1:])
        return waves
    waves.extend([c] for c in controllers)
    if others:
        waves.append(others)
    return waves
