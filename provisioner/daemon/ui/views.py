"""What the dashboard shows, as plain data: pure functions over the site and the store.

The routes (app.py) render these into HTML and server-sent events; keeping the
reading here means the pages and the live updates can never disagree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provisioner.ddns.records import node_publication
from provisioner.errors import ProvisionerError
from provisioner.inventory import Site
from provisioner.pipeline.hooks import STEP_PREFIX, plan_hooks
from provisioner.pipeline.quorum import assess
from provisioner.roles.bundles import BundleStore
from provisioner.settings import StateDir
from provisioner.state.machine import EventKind, NodeState
from provisioner.state.store import EventRecord, NodeRecord, Store

#: Units drawn for a rack whose nodes all sit lower (a common 42U rack).
DEFAULT_RACK_UNITS = 42
#: How much of a lab node's serial console the node page shows.
SERIAL_TAIL_BYTES = 16 * 1024


def state_class(state: NodeState | None) -> str:
    """The colour group of a state: ok, failed, busy, idle or off (CSS classes)."""
    if state is None:
        return "idle"
    if state is NodeState.ACTIVE:
        return "ok"
    if state.is_failed:
        return "failed"
    if state.is_busy:
        return "busy"
    if state is NodeState.DECOMMISSIONED:
        return "off"
    return "idle"


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.isoformat(timespec="seconds")


def _local(at: datetime) -> str:
    """A time for a table cell: UTC, to the second, no zone suffix (the header says UTC)."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S")


def node_rows(site: Site, store: Store) -> list[dict[str, Any]]:
    """One row per node of the site, in inventory order (the nodes table, the racks)."""
    records = {r.name: r for r in store.all()}
    last = store.last_events()
    return [_row(n.name, site, records.get(n.name), last.get(n.name)) for n in site.nodes]


def _row(name: str, site: Site, rec: NodeRecord | None, last: EventRecord | None) -> dict[str, Any]:
    node = site.node(name)
    state = rec.state if rec else None
    return {
        "name": name,
        "role": node.role,
        "rack": node.rack or "",
        "position": node.position,
        "ip": str(node.ip),
        "state": state.value if state else "not enrolled",
        "class": state_class(state),
        "step": (rec.step or "") if rec else "",
        "since": _iso(rec.state_since) if rec else None,
        "reason": (rec.reason or "") if rec and state and state.is_failed else "",
        "last_event": _first_line(last),
    }


def _first_line(event: EventRecord | None) -> str:
    """An event's gist for a table cell: its message's first line, else its kind."""
    if event is None:
        return ""
    lines = event.message.strip().splitlines()
    return lines[0][:200] if lines else f"{event.kind.value} {event.event or ''}".strip()


@dataclass
class Rack:
    name: str
    units: int
    #: unit number (bottom = 1) -> the row of the node there
    slots: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: nodes of this rack without a position
    unplaced: list[dict[str, Any]] = field(default_factory=list)

    def top_down(self) -> list[tuple[int, dict[str, Any] | None]]:
        return [(u, self.slots.get(u)) for u in range(self.units, 0, -1)]


def racks(rows: list[dict[str, Any]]) -> list[Rack]:
    """The racks in the order their first node appears; nodes with no rack come last."""
    found: dict[str, Rack] = {}
    for row in rows:
        rack = found.setdefault(row["rack"], Rack(row["rack"], DEFAULT_RACK_UNITS))
        if row["rack"] and row["position"]:
            rack.slots[row["position"]] = row
            rack.units = max(rack.units, row["position"])
        else:
            rack.unplaced.append(row)
    named = [r for r in found.values() if r.name]
    return named + ([found[""]] if "" in found else [])


def _event(e: EventRecord) -> dict[str, Any]:
    change = f"{e.from_state or '—'} → {e.to_state or '—'}" if e.from_state or e.to_state else ""
    return {
        "at": _iso(e.at),
        "at_text": _local(e.at),
        "kind": e.kind.value,
        "event": e.event or "",
        "change": change,
        "message": e.message,
        "actor": e.actor,
    }


def node_detail(site: Site, store: Store, state_dir: Path, name: str) -> dict[str, Any]:
    """Everything the node page shows, except the BMC's answer (fetched apart: it may
    take the BMC's timeout)."""
    node = site.node(name)
    rec = store.find(name)
    events = store.events(name) if rec else []
    last = events[-1] if events else None
    failed_hook = None
    if rec and rec.state is NodeState.CONFIGURING_FAILED and rec.step:
        failed_hook = rec.step.removeprefix(STEP_PREFIX)
    outputs: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.kind is EventKind.HOOK and e.message.startswith("hook "):
            hook_name = e.message.split(None, 2)[1]
            outputs[hook_name] = _event(e)  # the newest run of each hook
    try:
        hooks = [
            {
                "name": h.name,
                "path": str(h.path),
                "failed": h.name == failed_hook,
                "last": outputs.get(h.name),
            }
            for h in plan_hooks(site, node)
        ]
    except (OSError, ProvisionerError) as exc:
        hooks = [{"name": "?", "path": str(exc), "failed": False, "last": None}]
    bundles = BundleStore(state_dir)
    bundle = bundles.files(name) if bundles.exists(name) else []
    pub = node_publication(site, node)
    dns = [
        {"name": fqdn, "type": rtype, "ttl": rrset.ttl, "value": rrset.show()}
        for fqdn, records in pub.forward.items()
        for rtype, rrset in sorted(records.items())
    ] + [
        {"name": ptr, "type": "PTR", "ttl": site.dns.ttl, "value": target}
        for ptr, target in pub.reverse.items()
    ]
    return {
        "row": _row(name, site, rec, last),
        "fqdn": site.fqdn(node),
        "macs": node.macs,
        "bmc": f"{node.bmc.driver} {node.bmc.location}",
        "build_mode": rec.build_mode if rec else False,
        "events": [_event(e) for e in events],
        "hooks": hooks,
        "bundle": bundle,
        "bundle_dir": str(bundles.path(name)),
        "dns": dns,
        "serial": serial_tail(state_dir, name),
    }


def serial_tail(state_dir: Path, name: str, size: int = SERIAL_TAIL_BYTES) -> str | None:
    """The end of a lab node's serial console log, when the lab keeps one."""
    path = StateDir(state_dir).serial_log(name)
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            data = f.read()
    except OSError:
        return None
    return data.decode("utf-8", "replace").replace("\r", "")


def quorum_answer(site: Site, states: dict[str, NodeState | None], names: list[str]) -> str:
    """What the quorum guard says about taking ``names`` down, in a sentence."""
    verdict = assess(site, states, names)
    if verdict is None:
        return "no controller among them: the quorum guard has nothing to check"
    if not any(states.get(m) is NodeState.ACTIVE for m in verdict.members):
        return "no controller is active yet: there is no quorum to lose"
    healthy = ", ".join(verdict.healthy_after) or "none"
    return (
        f"{len(verdict.healthy_after)} of {len(verdict.members)} controllers stay healthy "
        f"({healthy}); {', '.join(verdict.services)} need {len(verdict.members) // 2 + 1}"
    )
