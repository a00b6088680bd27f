"""The node state machine and the vocabularies every layer shares.

A transition is named by an *event* ("provision", "fail", ...). The store looks
the target state up here; anything not in the table is illegal.

Besides the states: the kinds of event a node's log holds (``EventKind``), the
machine-readable names the boot server gives the events it reports
(``BootScript``, ``CallbackStatus``) and the pipeline's steps (``Step``). They
live here, at the bottom of the layers, so the HTTP routes that record events
and the pipeline that waits for them speak one vocabulary and nobody reads
meaning out of message text.
"""

from __future__ import annotations

from enum import StrEnum


class NodeState(StrEnum):
    ENROLLED = "enrolled"
    READY = "ready"
    PROVISIONING = "provisioning"
    BOOTING = "booting"
    INSTALLING = "installing"
    INSTALLED = "installed"
    CONFIGURING = "configuring"
    ACTIVE = "active"
    DECOMMISSIONED = "decommissioned"
    # One failed state per working state; the reason lives on the node row.
    PROVISIONING_FAILED = "provisioning failed"
    BOOTING_FAILED = "booting failed"
    INSTALLING_FAILED = "installing failed"
    INSTALLED_FAILED = "installed failed"
    CONFIGURING_FAILED = "configuring failed"

    @property
    def is_failed(self) -> bool:
        return self in FAILED_OF.values()

    @property
    def is_busy(self) -> bool:
        """A deployment is in flight: something is (or should be) driving the node."""
        return self in FAILED_OF


S = NodeState

#: working state -> its failed state
FAILED_OF: dict[NodeState, NodeState] = {
    S.PROVISIONING: S.PROVISIONING_FAILED,
    S.BOOTING: S.BOOTING_FAILED,
    S.INSTALLING: S.INSTALLING_FAILED,
    S.INSTALLED: S.INSTALLED_FAILED,
    S.CONFIGURING: S.CONFIGURING_FAILED,
}

# (from state, event) -> to state.  The single source of truth.
TRANSITIONS: dict[tuple[NodeState, str], NodeState] = {
    (S.ENROLLED, "manage"): S.READY,
    (S.READY, "provision"): S.PROVISIONING,
    (S.PROVISIONING, "boot"): S.BOOTING,  # power cycled into the network boot
    (S.BOOTING, "install"): S.INSTALLING,  # the installer fetched its kickstart
    (S.INSTALLING, "installed"): S.INSTALLED,  # the node called back: install done
    (S.INSTALLED, "configure"): S.CONFIGURING,  # local boot set, hooks starting
    (S.CONFIGURING, "activate"): S.ACTIVE,  # every hook succeeded
    # reprovision: the way back into provisioning
    (S.ACTIVE, "reprovision"): S.PROVISIONING,
    # retry from where it failed
    (S.CONFIGURING_FAILED, "configure"): S.CONFIGURING,
    # decommission keeps the node in the inventory but out of service
    (S.ENROLLED, "decommission"): S.DECOMMISSIONED,
    (S.READY, "decommission"): S.DECOMMISSIONED,
    (S.ACTIVE, "decommission"): S.DECOMMISSIONED,
    (S.DECOMMISSIONED, "enroll"): S.ENROLLED,
}
for _working, _failed in FAILED_OF.items():
    TRANSITIONS[(_working, "fail")] = _failed
    TRANSITIONS[(_failed, "reprovision")] = S.PROVISIONING
    TRANSITIONS[(_failed, "decommission")] = S.DECOMMISSIONED
    TRANSITIONS[(_failed, "manage")] = S.READY  # operator marks it usable again

#: events that need a reason
EVENTS_WITH_REASON = frozenset({"fail"})


def target(state: NodeState, event: str) -> NodeState | None:
    return TRANSITIONS.get((state, event))


def allowed_events(state: NodeState) -> list[str]:
    return sorted(event for (src, event) in TRANSITIONS if src == state)


class EventKind(StrEnum):
    """What an entry of a node's event log is. Stored as its string value."""

    TRANSITION = "transition"  # the node changed state (event: the transition's name)
    NOTE = "note"  # anything worth reading later (resumes, takeovers, BMC settings)
    POWER = "power"  # the pipeline power cycled the node (event: "cycle" or "retry")
    BUILD = "build"  # build mode on or off (event: "on" or "off")
    BOOT_SCRIPT = "boot script"  # the boot server served an iPXE script (event: BootScript)
    KICKSTART_SERVED = "kickstart"  # the installer fetched its kickstart
    CALLBACK = "callback"  # the installer called back (event: CallbackStatus)
    HOOK = "hook"  # a post-install hook ran (event: "ok", "failed", "timed out") or a rerun

    @classmethod
    def _missing_(cls, value: object) -> EventKind:
        """Kinds written before the vocabulary was fixed ("boot", ...) read as notes;
        their message text is kept as it was."""
        return cls.NOTE


class BootScript(StrEnum):
    """Which iPXE script the boot server served a MAC (the event name of BOOT_SCRIPT)."""

    INSTALL = "install"
    LOCAL = "local"
    DISCOVERY = "discovery"
    UNKNOWN = "unknown"


class CallbackStatus(StrEnum):
    """What an installer reports (the event name of CALLBACK)."""

    STARTED = "started"
    INSTALLED = "installed"
    FAILED = "failed"
    #: the installed system's first boot from its own disk (image installs' first-boot unit)
    BOOTED = "booted"
    #: the installed system applied its HA bundle and its role's services are up
    APPLIED = "applied"
    #: applying the bundle failed: the failing service and a bounded log excerpt
    APPLY_FAILED = "apply-failed"


class Step(StrEnum):
    """The pipeline's steps in order; a node records the one it is in (``step``).

    While the hooks run, the step is ``hook:<folder>/<file>`` (``HOOK_STEP_PREFIX``)
    so a resume or a rerun starts at that hook.
    """

    DNS = "dns"
    DHCP = "dhcp"
    BUILD_MODE = "build mode"
    NETBOOT = "one-time network boot"
    POWER = "power cycle"
    WAIT_BOOT_SCRIPT = "wait for boot script"
    WAIT_KICKSTART = "wait for kickstart"
    WAIT_INSTALLED = "wait for installed callback"
    BOOT_DISK = "boot device to disk"
    WAIT_BOOTED = "wait for booted callback"
    HOOKS = "hooks"
    WAIT_APPLIED = "wait for applied callback"


HOOK_STEP_PREFIX = "hook:"
