"""Operations over many nodes: provision, reprovision, rebuild, decommission, rerun-hooks.

Concurrent with a bounded fan-out; rebuilds go in waves (ordering.py) and the
quorum guard (quorum.py) runs before any controller is taken down. One node's
failure is recorded on that node and never stops the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from provisioner.errors import ProvisionerError
from provisioner.inventory import Site
from provisioner.pipeline.ordering import rebuild_waves
from provisioner.pipeline.quorum import guard
from provisioner.pipeline.runner import Pipeline
from provisioner.state.machine import NodeState
from provisioner.state.store import NodeRecord, Store

log = logging.getLogger(__name__)

DEFAULT_FANOUT = 10


@dataclass(frozen=True)
class NodeResult:
    name: str
    state: str
    reason: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.state in (NodeState.ACTIVE.value, NodeState.DECOMMISSIONED.value)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


OnResult = Callable[[NodeResult], None] | None


class Operations:
    def __init__(
        self,
        pipeline: Pipeline,
        fanout: int = DEFAULT_FANOUT,
        on_result: Callable[[NodeResult], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.store: Store = pipeline.store
        self.site: Callable[[], Site] = pipeline.site
        self.fanout = max(1, fanout)
        self.on_result = on_result
        #: one of several boot servers (serve --networks): drive only these networks' nodes
        self.networks: frozenset[str] | None = None

    def states(self) -> dict[str, NodeState | None]:
        recs = {r.name: r.state for r in self.store.all()}
        return {n.name: recs.get(n.name) for n in self.site().nodes}

    def select(
        self,
        names: Iterable[str] = (),
        role: str | None = None,
        rack: str | None = None,
        all_nodes: bool = False,
    ) -> list[str]:
        """Node names by name, role, rack or all, in inventory order; unknown names raise."""
        site = self.site()
        wanted = {site.node(n).name for n in names}
        chosen = [
            n.name
            for n in site.nodes
            if all_nodes
            or n.name in wanted
            or (role is not None and n.role == role)
            or (rack is not None and n.rack == rack)
        ]
        if not chosen:
            raise ProvisionerError("no node selected: name nodes, or use --role, --rack or --all")
        return chosen

    # ---- operations ---------------------------------------------------------------
    def run(
        self, action: str, names: Sequence[str], force: bool = False, on_result: OnResult = None
    ) -> list[NodeResult]:
        """One of provision, reprovision, rebuild, decommission, rerun-hooks by name."""
        if action == "provision":
            return self.provision(names, on_result=on_result)
        if action == "reprovision":
            return self.provision(names, reprovision=True, force=force, on_result=on_result)
        if action == "rebuild":
            return self.rebuild(names, force=force, on_result=on_result)
        if action == "decommission":
            return self.decommission(names, force=force, on_result=on_result)
        if action == "rerun-hooks":
            return self.rerun_hooks(names, on_result=on_result)
        raise ProvisionerError(f"unknown operation '{action}'")

    def provision(
        self,
        names: Sequence[str],
        reprovision: bool = False,
        force: bool = False,
        on_result: OnResult = None,
    ) -> list[NodeResult]:
        if reprovision:
            guard(self.site(), self.states(), names, "reprovisioning", force)
        return self._run_wave(names, lambda n: self.pipeline.provision(n, reprovision), on_result)

    def rebuild(
        self, names: Sequence[str], force: bool = False, on_result: OnResult = None
    ) -> list[NodeResult]:
        """Reinstall the nodes in waves that keep the clusters correct."""
        results: list[NodeResult] = []
        waves = rebuild_waves(self.site(), names, self.states())
        controllers = {n.name for n in self.site().nodes_of_kind("controller")}
        for wave in waves:
            is_controller_wave = bool(set(wave) & controllers)
            if is_controller_wave:
                if any(not r.ok for r in results if r.name in controllers):
                    failed = [r.name for r in results if r.name in controllers and not r.ok]
                    log.warning("rebuild: skipping controllers %s after %s failed", wave, failed)
                    why = f"skipped: controller {', '.join(failed)} failed first"
                    results += [self._skipped(n, why, on_result) for n in wave]
                    continue
                try:
                    guard(self.site(), self.states(), wave, "rebuilding", force)
                except ProvisionerError as exc:
                    results += [self._skipped(n, str(exc), on_result) for n in wave]
                    continue
            results += self._run_wave(wave, self._provision_any, on_result)
        return results

    def decommission(
        self, names: Sequence[str], force: bool = False, on_result: OnResult = None
    ) -> list[NodeResult]:
        guard(self.site(), self.states(), names, "decommissioning", force)
        return self._run_wave(names, self.pipeline.decommission, on_result)

    def rerun_hooks(self, names: Sequence[str], on_result: OnResult = None) -> list[NodeResult]:
        """Retry nodes whose hooks failed, each from its failed hook."""
        return self._run_wave(names, self.pipeline.rerun_hooks, on_result)

    def resume_all(self, on_result: OnResult = None) -> list[NodeResult]:
        """After a restart: continue every node a dead driver left in flight."""
        busy = [
            r.name
            for r in self.store.all()
            if r.state.is_busy
            and r.state is not NodeState.ACTIVE
            and r.name in {n.name for n in self.site().nodes}
        ]
        return self._run_wave(busy, self.pipeline.resume, on_result) if busy else []

    def resume(self, names: Sequence[str], on_result: OnResult = None) -> list[NodeResult]:
        """Continue these nodes from their recorded steps (a dead partner's, on takeover)."""
        return self._run_wave(names, self.pipeline.resume, on_result) if names else []

    # ---- helpers ------------------------------------------------------------------
    def _provision_any(self, name: str) -> NodeRecord:
        rec = self.store.find(name)
        active = rec is not None and (rec.state is NodeState.ACTIVE or rec.state.is_failed)
        return self.pipeline.provision(name, reprovision=active)

    def _other_network(self, name: str) -> str | None:
        """Why this server leaves the node alone (another network's), or None."""
        if self.networks is None:
            return None
        site = self.site()
        node = site.index.by_name.get(name)
        network = site.network_name_of(node) if node is not None else None
        if node is None or network in self.networks:
            return None
        mine = ", ".join(sorted(self.networks))
        return f"node {name}: on network {network}, served by another boot server (this: {mine})"

    def _skipped(self, name: str, why: str, on_result: OnResult) -> NodeResult:
        rec = self.store.find(name)
        result = NodeResult(name, rec.state.value if rec else "not enrolled", why, 0.0)
        if on_result:
            on_result(result)
        return result

    def _run_wave(
        self, names: Sequence[str], action: Callable[[str], NodeRecord], on_result: OnResult
    ) -> list[NodeResult]:
        def one(name: str) -> NodeResult:
            started = time.monotonic()
            other = self._other_network(name)
            if other is not None:
                return self._skipped(name, other, on_result)
            try:
                rec = action(name)
                result = NodeResult(name, rec.state.value, rec.reason, time.monotonic() - started)
            except ProvisionerError as exc:
                rec2 = self.store.find(name)
                result = NodeResult(
                    name,
                    rec2.state.value if rec2 else "not enrolled",
                    str(exc),
                    time.monotonic() - started,
                )
            except Exception as exc:
                log.exception("node %s: internal error", name)
                result = NodeResult(
                    name, "error", f"internal error: {exc}", time.monotonic() - started
                )
            if on_result:
                on_result(result)
            return result

        with ThreadPoolExecutor(max_workers=min(self.fanout, len(names) or 1)) as pool:
            return list(pool.map(one, names))
