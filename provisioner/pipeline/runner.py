"""One node's way through the pipeline, resumable after a crash.

Each step is recorded on the node (``step``) before it runs, so a restarted
daemon continues from there. Every failure ends in the failed state of the
node's current state, with the step and the cause as reason; it never stops
the other nodes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from provisioner.errors import ProvisionerError, StateError, StepFailed
from provisioner.inventory import Node, Site
from provisioner.pipeline.backends import Backends
from provisioner.state.machine import NodeState
from provisioner.state.store import NodeRecord, Store

log = logging.getLogger(__name__)
S = NodeState


class Step(StrEnum):
    DNS = "dns"
    DHCP = "dhcp"
    BUILD_MODE = "build mode"
    NETBOOT = "one-time network boot"
    POWER = "power cycle"
    WAIT_BOOT_SCRIPT = "wait for boot script"
    WAIT_KICKSTART = "wait for kickstart"
    WAIT_INSTALLED = "wait for installed callback"
    WAIT_ACTIVE = "wait for hooks"


STEPS = list(Step)
#: once the node is here, the install is underway: never power cycle it again
PAST_KICKSTART = {S.INSTALLING, S.INSTALLED, S.CONFIGURING, S.ACTIVE}


@dataclass(frozen=True)
class Timeouts:
    boot_script: float = 600.0
    kickstart: float = 600.0
    installed: float = 3600.0
    active: float = 1800.0
    poll: float = 1.0


class Pipeline:
    def __init__(
        self,
        store: Store,
        site: Callable[[], Site],
        backends: Backends,
        timeouts: Timeouts | None = None,
        power_retries: int = 1,
        actor: str = "pipeline",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store, self.site, self.backends = store, site, backends
        self.timeouts = timeouts or Timeouts()
        self.power_retries = power_retries
        self.actor = actor
        self._clock, self._sleep = clock, sleep

    # ---- entry points --------------------------------------------------------
    def provision(self, name: str, reprovision: bool = False) -> NodeRecord:
        """Drive the node to ACTIVE (or a failed state). Raises only if it cannot start."""
        site = self.site()
        site.node(name)
        self.store.enroll(name, actor=self.actor, message="enrolled for provisioning")
        operation = "reprovision" if reprovision else "provision"
        with self.store.reserved(name, operation, owner=self.actor) as token:
            self._enter_provisioning(name, reprovision)
            return self._run(name, Step.DNS, token)

    def resume(self, name: str) -> NodeRecord:
        """Continue a node whose driver died, from its recorded step."""
        rec = self.store.get(name)
        if not rec.state.is_busy or rec.state is S.ACTIVE:
            return rec
        with self.store.reserved(name, "resume", owner=self.actor) as token:
            rec = self.store.get(name)
            start = Step(rec.step) if rec.step in set(Step) else Step.DNS
            if rec.state in PAST_KICKSTART:
                start = max(start, Step.WAIT_INSTALLED, key=STEPS.index)
            elif rec.state is S.BOOTING:
                start = max(start, Step.POWER, key=STEPS.index)
            self.store.add_event(name, f"resuming at step '{start}'", actor=self.actor)
            log.info("node %s: resuming at step %s", name, start)
            return self._run(name, start, token)

    def decommission(self, name: str) -> NodeRecord:
        site = self.site()
        node = site.node(name)
        with self.store.reserved(name, "decommission", owner=self.actor):
            self.backends.power_off(site, node)
            self.backends.remove_dhcp_host(site, node)
            self.backends.unpublish_dns(site, node)
            self.store.end_build_mode(name, actor=self.actor, why="decommissioned")
            return self.store.transition(name, "decommission", actor=self.actor)

    # ---- the steps -------------------------------------------------------------
    def _enter_provisioning(self, name: str, reprovision: bool) -> None:
        rec = self.store.get(name)
        if rec.state is S.ENROLLED:
            rec = self.store.transition(name, "manage", actor=self.actor)
        if rec.state is S.READY:
            self.store.transition(name, "provision", actor=self.actor)
        elif rec.state is S.ACTIVE or rec.state.is_failed:
            if rec.state is S.ACTIVE and not reprovision:
                raise StateError(f"node {name}: already active; use reprovision to reinstall it")
            self.store.transition(name, "reprovision", actor=self.actor)
        else:
            raise StateError(
                f"node {name}: cannot provision while {rec.state.value} "
                "(a deployment is in flight: resume it, or wait)"
            )

    def _run(self, name: str, start: Step, token: str) -> NodeRecord:
        site = self.site()
        node = site.node(name)
        for step in STEPS[STEPS.index(start) :]:
            self.store.set_step(name, step.value, actor=self.actor)
            try:
                self._do(step, site, node, token)
            except _NodeFailed as stopped:
                log.warning("node %s: stopped: %s", name, stopped)
                return self.store.get(name)
            except ProvisionerError as exc:
                return self._fail(name, f"{step}: {exc}")
            except Exception as exc:
                log.exception("node %s: internal error in step %s", name, step)
                return self._fail(name, f"{step}: internal error: {type(exc).__name__}: {exc}")
        self.store.set_step(name, None, actor=self.actor)
        return self.store.get(name)

    def _do(self, step: Step, site: Site, node: Node, token: str) -> None:
        name = node.name
        if step is Step.DNS:
            self.backends.publish_dns(site, node)
        elif step is Step.DHCP:
            self.backends.add_dhcp_host(site, node)
        elif step is Step.BUILD_MODE:
            self.store.start_build_mode(name, actor=self.actor)
        elif step is Step.NETBOOT:
            self.backends.set_boot_device(site, node, "network", persistent=False)
        elif step is Step.POWER:
            if self.store.get(name).state is S.PROVISIONING:
                self.store.transition(name, "boot", actor=self.actor)
            # recorded first: boot script fetches count from this event on
            self.store.add_event(
                name,
                "power cycling into a one-time network boot",
                kind="power",
                actor=self.actor,
            )
            self.backends.power_cycle(site, node)
        elif step is Step.WAIT_BOOT_SCRIPT:
            self._wait_boot_script(site, node, token)
        elif step is Step.WAIT_KICKSTART:
            self._wait_state(
                name,
                PAST_KICKSTART,
                self.timeouts.kickstart,
                token,
                "the installer did not fetch its kickstart",
            )
        elif step is Step.WAIT_INSTALLED:
            self._wait_state(
                name,
                {S.INSTALLED, S.CONFIGURING, S.ACTIVE},
                self.timeouts.installed,
                token,
                "the node never called back",
            )
        elif step is Step.WAIT_ACTIVE:
            self._wait_state(
                name, {S.ACTIVE}, self.timeouts.active, token, "post-install hooks did not finish"
            )

    def _wait_boot_script(self, site: Site, node: Node, token: str) -> None:
        name = node.name
        # boot script fetches count from the latest power cycle on (also after a resume)
        power_events = self.store.events_after(name, 0, kind="power")
        mark = power_events[-1].id if power_events else 0
        for attempt in range(self.power_retries + 1):
            if attempt:
                self.store.add_event(
                    name,
                    f"no boot script fetch: power cycling again (retry {attempt})",
                    kind="power",
                    actor=self.actor,
                )
                mark = self.store.last_event_id(name)
                self.backends.set_boot_device(site, node, "network", persistent=False)
                self.backends.power_cycle(site, node)
            deadline = self._clock() + self.timeouts.boot_script
            while self._clock() < deadline:
                rec = self._check(name)
                if rec.state in PAST_KICKSTART:
                    return
                fetched = [
                    e
                    for e in self.store.events_after(name, mark, kind="boot")
                    if e.message.startswith("boot script served (install")
                ]
                if fetched:
                    return
                self.store.refresh(name, token)
                self._sleep(self.timeouts.poll)
        raise StepFailed(
            f"the node did not fetch its boot script within {self.timeouts.boot_script:g}s "
            f"({self.power_retries + 1} power cycle(s))"
        )

    def _wait_state(
        self, name: str, wanted: set[NodeState], timeout: float, token: str, what: str
    ) -> None:
        deadline = self._clock() + timeout
        while True:
            rec = self._check(name)
            if rec.state in wanted:
                return
            if self._clock() >= deadline:
                raise StepFailed(f"{what} within {timeout:g}s")
            self.store.refresh(name, token)
            self._sleep(self.timeouts.poll)

    def _check(self, name: str) -> NodeRecord:
        """The node's record; stop if someone else (a callback, a hook) failed it."""
        rec = self.store.get(name)
        if rec.state.is_failed or rec.state is S.DECOMMISSIONED:
            raise _NodeFailed(f"{rec.state.value}: {rec.reason or ''}")
        return rec

    def _fail(self, name: str, reason: str) -> NodeRecord:
        rec = self.store.get(name)
        if rec.state.is_failed:
            return rec
        try:
            return self.store.transition(name, "fail", reason=reason, actor=self.actor)
        except StateError:
            log.exception("node %s: could not record failure: %s", name, reason)
            return self.store.get(name)


class _NodeFailed(Exception):
    """The node was failed by someone else while we waited."""
