"""The quorum guard: never take down a controller the clusters cannot spare.

Galera, RabbitMQ (quorum queues) and Pacemaker need a strict majority of their
members healthy. Before a reprovision or power-off of controllers, count the
controllers that would still be healthy (ACTIVE and not among the targets).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from provisioner.errors import QuorumAtRisk
from provisioner.inventory import Site
from provisioner.inventory.checks import QUORUM_SERVICES_DEFAULT
from provisioner.state.machine import NodeState


@dataclass(frozen=True)
class QuorumVerdict:
    members: list[str]
    healthy_after: list[str]
    down: list[str]  # members not healthy now (besides the targets)
    services: list[str]

    @property
    def safe(self) -> bool:
        return len(self.healthy_after) > len(self.members) // 2

    def message(self, targets: Iterable[str], action: str) -> str:
        need = len(self.members) // 2 + 1
        down = f"; down already: {', '.join(self.down)}" if self.down else ""
        return (
            f"{action} {', '.join(targets)} would leave {len(self.healthy_after)} of "
            f"{len(self.members)} controllers healthy ({', '.join(self.healthy_after) or 'none'})"
            f", but {', '.join(self.services)} need {need}{down}; use --force to do it anyway"
        )


def assess(
    site: Site, states: Mapping[str, NodeState | None], targets: Iterable[str]
) -> QuorumVerdict | None:
    """None when no controller is among the targets (nothing to guard)."""
    targets = set(targets)
    if not targets & {n.name for n in site.nodes_of_kind("controller")}:
        return None
    # members: controllers ever deployed; one never installed (or decommissioned)
    # is not in the cluster yet, so it is not "down" either
    members = [
        n.name
        for n in site.nodes_of_kind("controller")
        if states.get(n.name)
        not in (None, NodeState.ENROLLED, NodeState.READY, NodeState.DECOMMISSIONED)
    ]
    healthy = [m for m in members if states.get(m) is NodeState.ACTIVE]
    services: list[str] = []
    for name, role in site.roles.items():
        if site.role_kind(name) == "controller":
            services += role.ha.quorum_services or list(QUORUM_SERVICES_DEFAULT)
    return QuorumVerdict(
        members=members,
        healthy_after=[m for m in healthy if m not in targets],
        down=[m for m in members if m not in healthy and m not in targets],
        services=sorted(set(services)),
    )


def guard(
    site: Site,
    states: Mapping[str, NodeState | None],
    targets: Iterable[str],
    action: str,
    force: bool = False,
) -> None:
    """Raise QuorumAtRisk unless the controllers keep a majority (or ``force``).

    A first deployment (no controller ever active) has no quorum to lose.
    """
    targets = list(targets)
    verdict = assess(site, states, targets)
    if verdict is None or force or verdict.safe:
        return
    if not any(states.get(m) is NodeState.ACTIVE for m in verdict.members):
        return
    raise QuorumAtRisk(verdict.message(targets, action))
