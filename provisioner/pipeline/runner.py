"""One node's way through the pipeline, resumable after a crash.

The pipeline is the one owner of a deployment: the boot server's routes only
record what happened (typed events, see callbacks.py), and this class moves the
node through the state machine, points its BMC at the disk after the install
and runs its hooks, in its own process (the daemon's, or the CLI's without a
daemon). A restarted web worker therefore loses nothing.

Each step is recorded on the node (``step``) before it runs, each hook too
(``hook:<name>``), so a restarted daemon continues from there. Every wait has
its own timeout; every failure ends in the failed state of the node's current
state, with the step and the cause as reason; it never stops the other nodes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from provisioner.errors import IllegalTransition, ProvisionerError, StateError, StepFailed
from provisioner.inventory import Node, Site
from provisioner.pipeline.backends import Backends
from provisioner.pipeline.callbacks import InstallProgress, Milestone, last_power_cycle
from provisioner.pipeline.hooks import HookRunner
from provisioner.state.machine import (
    HOOK_STEP_PREFIX,
    EventKind,
    NodeState,
    Step,
    allowed_events,
    target,
)
from provisioner.state.store import NodeRecord, Store

log = logging.getLogger(__name__)
S = NodeState

__all__ = ["Pipeline", "Step", "Timeouts"]

STEPS = list(Step)
#: a resumed node in this state starts at this step at the earliest (once the
#: kickstart was fetched, the install is underway: never power cycle it again)
RESUME_FLOOR = {
    S.BOOTING: Step.POWER,
    S.INSTALLING: Step.WAIT_INSTALLED,
    S.INSTALLED: Step.BOOT_DISK,  # setting the boot device again is harmless
    S.CONFIGURING: Step.HOOKS,
}


@dataclass(frozen=True)
class Timeouts:
    boot_script: float = 600.0
    kickstart: float = 600.0
    installed: float = 3600.0
    booted: float = 900.0  # image installs: installed callback -> first-boot callback
    active: float = 1800.0  # the whole hook chain
    applied: float = 1800.0  # image installs: hooks done -> the node's apply report
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
        hooks: HookRunner | None = None,
    ) -> None:
        """``hooks`` runs the post-install hooks; by default one over the store's state
        directory and the site's folder (a server database needs it passed)."""
        self.store, self.site, self.backends = store, site, backends
        self.timeouts = timeouts or Timeouts()
        self.power_retries = power_retries
        self.actor = actor
        self._clock, self._sleep = clock, sleep
        self._hooks = hooks

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
        """Continue a node whose driver died, from its recorded step (or hook)."""
        rec = self.store.get(name)
        if not rec.state.is_busy or rec.state is S.ACTIVE:
            return rec
        with self.store.reserved(name, "resume", owner=self.actor) as token:
            rec = self.store.get(name)
            start, first_hook = _resume_point(rec)
            where = f"hook {first_hook}" if first_hook else f"step '{start}'"
            self.store.add_event(name, f"resuming at {where}", actor=self.actor)
            log.info("node %s: resuming at %s", name, where)
            return self._run(name, start, token, first_hook)

    def rerun_hooks(self, name: str) -> NodeRecord:
        """Retry a node whose hooks failed, from the hook that failed."""
        self.site().node(name)
        with self.store.reserved(name, "hooks rerun", owner=self.actor) as token:
            rec = self.store.get(name)
            if rec.state is not S.CONFIGURING_FAILED:
                raise StateError(
                    f"node {name}: hooks rerun needs 'configuring failed', not {rec.state.value}"
                )
            failed = None
            if rec.step and rec.step.startswith(HOOK_STEP_PREFIX):
                failed = rec.step.removeprefix(HOOK_STEP_PREFIX)
            self.store.transition(name, "configure", actor=self.actor, step=rec.step)
            self.store.add_event(
                name,
                f"hooks rerun from {failed or 'the first hook'}",
                EventKind.HOOK,
                self.actor,
                event="rerun",
            )
            return self._run(name, Step.HOOKS, token, failed)

    def decommission(self, name: str) -> NodeRecord:
        site = self.site()
        node = site.node(name)
        with self.store.reserved(name, "decommission", owner=self.actor):
            state = self.store.get(name).state
            if target(state, "decommission") is None:  # refuse before touching anything
                raise IllegalTransition(name, state.value, "decommission", allowed_events(state))
            self.backends.power_off(site, node)
            self.backends.remove_dhcp_host(site, node)
            left = self.backends.unpublish_dns(site, node)
            for item in left:  # another writer's record: never deleted, always said
                log.warning("node %s: DNS record left in place: %s", name, item)
                self.store.add_event(name, f"DNS record left in place: {item}", actor=self.actor)
            self.store.end_build_mode(name, actor=self.actor, why="decommissioned")
            rec = self.store.transition(name, "decommission", actor=self.actor)
            if left:  # decommissioned, with something for the operator to do by hand
                why = f"{len(left)} DNS record(s) not published by provisioner left in place"
                return dataclasses.replace(rec, reason=f"{why}: {'; '.join(left)}")
            return rec

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

    def _run(self, name: str, start: Step, token: str, first_hook: str | None = None) -> NodeRecord:
        site = self.site()
        node = site.node(name)
        for step in STEPS[STEPS.index(start) :]:
            self.store.set_step(name, step.value, actor=self.actor)
            try:
                self._do(step, site, node, token, first_hook)
            except _NodeFailed as stopped:
                log.warning("node %s: stopped: %s", name, stopped)
                return self.store.get(name)
            except _InstallerFailed as failed:
                return self._fail(name, f"installer failed: {failed.message or 'no message'}")
            except ProvisionerError as exc:
                return self._fail(name, f"{step}: {exc}")
            except Exception as exc:
                log.exception("node %s: internal error in step %s", name, step)
                return self._fail(name, f"{step}: internal error: {type(exc).__name__}: {exc}")
        self.store.set_step(name, None, actor=self.actor)
        return self.store.get(name)

    def _do(self, step: Step, site: Site, node: Node, token: str, first_hook: str | None) -> None:
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
            # recorded first: the installer's progress counts from this event on
            self.store.add_event(
                name,
                "power cycling into a one-time network boot",
                EventKind.POWER,
                self.actor,
                event="cycle",
            )
            self.backends.power_cycle(site, node)
            # booting once the BMC confirmed: a BMC that is down leaves it provisioning failed
            if self.store.get(name).state is S.PROVISIONING:
                self.store.transition(name, "boot", actor=self.actor)
        elif step is Step.WAIT_BOOT_SCRIPT:
            self._wait_boot_script(site, node, token)
        elif step is Step.WAIT_KICKSTART:
            if self.store.get(name).state is S.BOOTING:
                self._wait_for(
                    name,
                    Milestone.KICKSTART,
                    self.timeouts.kickstart,
                    token,
                    "the installer did not fetch its kickstart",
                )
                self.store.transition(name, "install", actor=self.actor)
        elif step is Step.WAIT_INSTALLED:
            if self.store.get(name).state is S.INSTALLING:
                progress = self._wait_for(
                    name,
                    Milestone.INSTALLED,
                    self.timeouts.installed,
                    token,
                    "the node never called back",
                )
                self.store.transition(name, "installed", actor=self.actor)
                log.info("node %s: installed: %s", name, progress.installed_message or "-")
        elif step is Step.BOOT_DISK:
            if self.store.get(name).state is S.INSTALLED:
                self.backends.set_boot_device(site, node, "disk", persistent=True)
                self.store.add_event(name, "BMC boot device: disk (persistent)", actor=self.actor)
        elif step is Step.WAIT_BOOTED:
            if self.store.get(name).state is S.INSTALLED:
                self._wait_booted(site, node, token)
                self.store.transition(name, "configure", actor=self.actor, step=Step.HOOKS.value)
        elif step is Step.HOOKS:
            self._run_hooks(name, token, first_hook, activate=not self._node_applies(site, node))
        elif step is Step.WAIT_APPLIED and self.store.get(name).state is S.CONFIGURING:
            self._wait_applied(node, token)
            self.store.transition(name, "activate", actor=self.actor)

    @staticmethod
    def _node_applies(site: Site, node: Node) -> bool:
        """Image installs carry the first-boot units (kickstart/snippets/firstboot-callback.j2):
        the installed system pulls its own bundle, brings its role's services up and reports
        "applied"; only that report makes it active. A package install (a real distribution
        installer, no such unit) is active once its hooks ran, as before."""
        profile = site.profiles.get(site.profile_of(node) or "")
        return profile is not None and profile.image is not None and profile.image.apply_bundle

    def _wait_applied(self, node: Node, token: str) -> None:
        """Until the node reports its bundle applied; its "apply-failed" report (the failing
        service and a log excerpt) fails it with that as the reason."""
        name = node.name
        mark = last_power_cycle(self.store, name)
        deadline = self._clock() + self.timeouts.applied
        while True:
            self._check(name)
            progress = InstallProgress.since(self.store, name, mark)
            if progress.apply_failed is not None:
                raise StepFailed(f"apply failed: {progress.apply_failed}")
            if progress.reached >= Milestone.APPLIED:
                log.info("node %s: %s", name, progress.applied_message or "bundle applied")
                return
            if self._clock() >= deadline:
                raise StepFailed(
                    f"the node did not report its bundle applied within {self.timeouts.applied:g}s"
                )
            self.store.refresh(name, token)
            self._sleep(self.timeouts.poll)

    def _run_hooks(self, name: str, token: str, first_hook: str | None, activate: bool) -> None:
        """The hooks, here in the pipeline's process; then active (unless the node applies
        its bundle itself: see WAIT_APPLIED), or failed at the hook."""
        rec = self._check(name)
        if rec.state is S.ACTIVE:
            return
        outcome = self.hooks.run(
            name,
            start_at=first_hook,
            budget_s=self.timeouts.active,
            before_hook=lambda _hook: self.store.refresh(name, token),
        )
        if outcome.failed is not None:
            reason = outcome.reason or f"hook {outcome.failed} failed"
            self.store.transition(
                name,
                "fail",
                reason=reason,
                actor=self.actor,
                step=HOOK_STEP_PREFIX + outcome.failed,
            )
            raise _NodeFailed(reason)
        if activate:
            self.store.transition(name, "activate", actor=self.actor)

    @property
    def hooks(self) -> HookRunner:
        if self._hooks is None:
            state_dir = self.store.state_dir
            if state_dir is None:
                raise StepFailed("hooks need a state directory: give the pipeline a HookRunner")
            site = self.site()
            self._hooks = HookRunner(self.site, self.store, state_dir, site.base_dir / "site.yaml")
        return self._hooks

    def _wait_booted(self, site: Site, node: Node, token: str) -> None:
        """Image installs: wait until the installed system calls back from its first boot
        (the kickstart's first-boot unit), so the hooks start on a node that runs its own
        OS. A package install (a real distribution installer, no such unit) does not wait."""
        profile = site.profiles.get(site.profile_of(node) or "")
        if profile is None or profile.image is None:
            return
        progress = self._wait_for(
            node.name,
            Milestone.BOOTED,
            self.timeouts.booted,
            token,
            "the installed system did not report booting from its disk",
        )
        log.info("node %s: %s", node.name, progress.booted_message or "booted from disk")

    def _wait_boot_script(self, site: Site, node: Node, token: str) -> None:
        name = node.name
        if self.store.get(name).state is not S.BOOTING:
            return
        for attempt in range(self.power_retries + 1):
            if attempt:
                self.store.add_event(
                    name,
                    f"no boot script fetch: power cycling again (retry {attempt})",
                    EventKind.POWER,
                    self.actor,
                    event="retry",
                )
                self.backends.set_boot_device(site, node, "network", persistent=False)
                self.backends.power_cycle(site, node)
            try:
                self._wait_for(
                    name, Milestone.BOOT_SCRIPT, self.timeouts.boot_script, token, "boot script"
                )
                return
            except _TimedOut:
                continue
        raise StepFailed(
            f"the node did not fetch its boot script within {self.timeouts.boot_script:g}s "
            f"({self.power_retries + 1} power cycle(s))"
        )

    def _wait_for(
        self, name: str, wanted: Milestone, timeout: float, token: str, what: str
    ) -> InstallProgress:
        """Poll the node's events since its last power cycle until the installer got
        to ``wanted``; stop on the installer's failure report, or at the timeout."""
        mark = last_power_cycle(self.store, name)
        deadline = self._clock() + timeout
        while True:
            self._check(name)
            progress = InstallProgress.since(self.store, name, mark)
            if progress.reached >= wanted:
                return progress
            if progress.failed is not None:
                raise _InstallerFailed(progress.failed)
            if self._clock() >= deadline:
                if wanted is Milestone.BOOT_SCRIPT:
                    raise _TimedOut(what)
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


def _resume_point(rec: NodeRecord) -> tuple[Step, str | None]:
    """Where a node continues: its recorded step (or hook), never before what its state
    says is done (a node past the kickstart is never power cycled again)."""
    first_hook = None
    if rec.step and rec.step.startswith(HOOK_STEP_PREFIX):
        start, first_hook = Step.HOOKS, rec.step.removeprefix(HOOK_STEP_PREFIX)
    elif rec.step in set(Step):
        start = Step(rec.step)
    else:  # nothing recorded, or a step name of an older version
        start = Step.DNS
    floor = RESUME_FLOOR.get(rec.state)
    if floor is not None and STEPS.index(start) < STEPS.index(floor):
        start = floor
    return start, first_hook


class _NodeFailed(Exception):
    """The node was failed (by someone else while we waited, or by its hooks)."""


class _TimedOut(Exception):
    """A wait that may be retried (the boot script, after another power cycle) timed out."""


class _InstallerFailed(Exception):
    """The installer reported failure; its message becomes the node's reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
