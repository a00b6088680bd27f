"""Which nodes in flight a ``serve`` instance should take over, and which nobody serves.

A node is in flight from provisioning until active or failed; its pipeline runs
in the instance holding its reservation. When that instance dies (no heartbeat
for the silence it declared when registering), its reservations are stale and any live
instance serving the node's network may resume the node from its recorded step;
``Store.reserve`` lets exactly one of them have it. A node whose network no live
instance serves is reported instead of staying silently stuck.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from provisioner.inventory.models import Site
from provisioner.state.machine import NodeState
from provisioner.state.servers import Servers
from provisioner.state.store import Store


@dataclass(frozen=True)
class Survey:
    #: in-flight nodes of our networks that nobody live holds: ours to resume
    to_take: list[str] = field(default_factory=list)
    #: network -> its in-flight nodes, for networks no live instance serves
    unserved: dict[str, list[str]] = field(default_factory=dict)


def in_flight(store: Store, site: Site) -> dict[str, str]:
    """Node -> its provisioning network, for the inventory's nodes a pipeline should drive."""
    networks = {n.name: site.network_name_of(n) for n in site.nodes}
    return {
        r.name: networks[r.name] or "?"
        for r in store.all()
        if r.state.is_busy and r.state is not NodeState.ACTIVE and r.name in networks
    }


def survey(store: Store, site: Site, servers: Servers, ours: Collection[str]) -> Survey:
    flying = in_flight(store, site)
    served = servers.serving()
    unserved: dict[str, list[str]] = {}
    for name, network in flying.items():
        if network not in served:
            unserved.setdefault(network, []).append(name)
    mine = [name for name, network in flying.items() if network in ours]
    return Survey(store.takeable(mine) if mine else [], unserved)
