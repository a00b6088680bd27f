"""How far a node's installer got, read from the typed events the boot server records.

The HTTP routes only report what happened (bootserver/boot_routes.py,
ks_routes.py, callback_routes.py): an install boot script served, the kickstart
fetched, the installer's callbacks. The pipeline reads those events here, by
kind and event name, never by message text, counting only events newer than
the node's latest power cycle (``mark``), so nothing of an earlier deployment
is taken for this one.

Each later milestone implies the earlier ones: a node whose kickstart was
fetched did get its boot script, even if that event was lost with a killed web
worker (boot script events are written in the background).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from provisioner.state.machine import BootScript, CallbackStatus, EventKind
from provisioner.state.store import EventRecord, Store

#: the events that tell an installer's progress
PROGRESS_KINDS = (EventKind.BOOT_SCRIPT, EventKind.KICKSTART_SERVED, EventKind.CALLBACK)


class Milestone(IntEnum):
    NONE = 0
    BOOT_SCRIPT = 1  # the node fetched its install boot script
    KICKSTART = 2  # the installer fetched its kickstart
    INSTALLED = 3  # the installer reported the install complete
    BOOTED = 4  # the installed system reported its first boot from its own disk
    APPLIED = 5  # the installed system applied its bundle: its role's services are up


@dataclass(frozen=True)
class InstallProgress:
    reached: Milestone
    #: the installer's message if it reported failure (possibly empty)
    failed: str | None = None
    #: the installer's message with its "installed" callback
    installed_message: str = ""
    #: the installed system's message with its "booted" callback (its kernel)
    booted_message: str = ""
    #: the installed system's report of applying its bundle (per-service results)
    applied_message: str = ""
    #: the failing service and log excerpt of an "apply-failed" report
    apply_failed: str | None = None

    @classmethod
    def of(cls, events: list[EventRecord]) -> InstallProgress:
        reached, failed, installed_message, booted_message = Milestone.NONE, None, "", ""
        applied_message, apply_failed = "", None
        for event in events:
            if event.kind is EventKind.BOOT_SCRIPT and event.event == BootScript.INSTALL:
                reached = max(reached, Milestone.BOOT_SCRIPT)
            elif event.kind is EventKind.KICKSTART_SERVED:
                reached = max(reached, Milestone.KICKSTART)
            elif event.kind is EventKind.CALLBACK:
                reached = max(reached, Milestone.KICKSTART)  # the installer runs
                if event.event == CallbackStatus.INSTALLED:
                    reached, installed_message = max(reached, Milestone.INSTALLED), event.message
                elif event.event == CallbackStatus.BOOTED:
                    reached, booted_message = Milestone.BOOTED, event.message
                elif event.event == CallbackStatus.FAILED:
                    failed = event.message
                elif event.event == CallbackStatus.APPLIED:
                    reached, applied_message = Milestone.APPLIED, event.message
                elif event.event == CallbackStatus.APPLY_FAILED:
                    apply_failed = event.message
        return cls(
            reached, failed, installed_message, booted_message, applied_message, apply_failed
        )

    @classmethod
    def since(cls, store: Store, name: str, mark: int) -> InstallProgress:
        """The progress shown by the node's events newer than event id ``mark``."""
        return cls.of(store.events_after(name, mark, kind=PROGRESS_KINDS))


def last_power_cycle(store: Store, name: str) -> int:
    """The id of the node's latest power cycle event (0: none): progress counts from there."""
    cycles = store.events_after(name, 0, kind=EventKind.POWER)
    return cycles[-1].id if cycles else 0
