"""Pipeline.resume after the daemon died, and Pipeline.decommission.

A crash is simulated right after the pipeline recorded a step (before doing it),
or while it waited, right after the machine did something over HTTP. A new
Pipeline on a new Store connection then resumes the node, as ``provisioner
serve`` does on start. Whatever the moment, the node ends active having had
exactly the calls of an uninterrupted deployment: in particular one power cycle
(a node past its kickstart is installing; cycling it would destroy the install)
and each hook run once.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from provisioner.errors import PowerError, StateError
from provisioner.state.machine import NodeState
from provisioner.state.store import Store
from tests.unit.pipeline.simsite import HAPPY_CALLS, NODE, Crash, Sim, World

S = NodeState
ALL_HOOKS = [
    "common/10-record-context exited 0",
    "unit/10-first exited 0",
    "unit/20-second exited 0",
    "unit/30-third exited 0",
]
StepCrash = Callable[[Store, str, str | None], bool]


def at_step(step: str) -> StepCrash:
    return lambda store, name, recorded: recorded == step


def at_boot_disk_step(store: Store, name: str, recorded: str | None) -> bool:
    """The step recorded once the install is reported done: pointing the BMC at the disk."""
    return recorded is not None and store.get(name).state is S.INSTALLED


RECORDED_STEPS: dict[str, StepCrash] = {
    "dns": at_step("dns"),
    "dhcp": at_step("dhcp"),
    "build-mode": at_step("build mode"),
    "netboot": at_step("one-time network boot"),
    "power-cycle": at_step("power cycle"),
    "wait-boot-script": at_step("wait for boot script"),
    "wait-kickstart": at_step("wait for kickstart"),
    "wait-callback": at_step("wait for installed callback"),
    "boot-disk": at_boot_disk_step,
    "wait-booted": at_step("wait for booted callback"),
    "first-hook": at_step("hook:common/10-record-context"),
    "middle-hook": at_step("hook:unit/20-second"),
}


@pytest.mark.parametrize("crash_at", RECORDED_STEPS.values(), ids=RECORDED_STEPS.keys())
def test_a_crash_after_recording_any_step_resumes_from_it(sim: Sim, crash_at: StepCrash) -> None:
    sim.machine()
    sim.store.crash_at = crash_at
    with pytest.raises(Crash):
        sim.pipeline().provision(NODE)
    left = sim.store.get(NODE)
    assert left.state.is_busy and not left.state.is_failed, left

    rec = sim.restart().resume(NODE)

    assert (rec.state, rec.reason) == (S.ACTIVE, None)
    assert sim.backends.log() == HAPPY_CALLS
    assert sim.hook_runs() == ALL_HOOKS
    assert sim.store.reservation(NODE) is None


def test_an_image_install_resumed_while_waiting_for_its_first_boot_goes_on(sim: Sim) -> None:
    sim.installs_images()
    sim.machine(first_boot=200)
    sim.store.crash_at = at_step("wait for booted callback")
    with pytest.raises(Crash):
        sim.pipeline().provision(NODE)
    assert sim.store.get(NODE).state is S.INSTALLED

    pipeline = sim.restart()
    sim.world.sleep(300)  # the node boots its disk and calls back while no daemon runs
    rec = pipeline.resume(NODE)

    assert (rec.state, rec.reason) == (S.ACTIVE, None)
    assert sim.backends.log() == HAPPY_CALLS  # resumed at the wait: no second BMC call
    assert sim.hook_runs() == ALL_HOOKS


def responded(what: str) -> Callable[[World], bool]:
    return lambda world: any(done == what for done, _ in world.responses)


WAIT_CRASHES: dict[str, Callable[[World], bool]] = {
    "after-boot-script": responded(f"boot {NODE}"),
    "after-kickstart": responded(f"kickstart {NODE}"),
    "after-callback": responded(f"callback {NODE} installed"),
}


@pytest.mark.parametrize("crash_when", WAIT_CRASHES.values(), ids=WAIT_CRASHES.keys())
def test_a_crash_while_waiting_loses_nothing_the_machine_did(
    sim: Sim, crash_when: Callable[[World], bool]
) -> None:
    sim.machine()
    sim.world.crash_when = crash_when
    with pytest.raises(Crash):
        sim.pipeline().provision(NODE)

    rec = sim.restart().resume(NODE)

    assert (rec.state, rec.reason) == (S.ACTIVE, None)
    assert sim.backends.log() == HAPPY_CALLS
    assert sim.hook_runs() == ALL_HOOKS


def test_a_callback_that_came_while_the_daemon_was_down_is_taken_up_on_resume(
    sim: Sim,
) -> None:
    sim.machine()
    sim.world.crash_when = responded(f"kickstart {NODE}")
    with pytest.raises(Crash):
        sim.pipeline().provision(NODE)
    sim.world.sleep(400)  # the install finishes and calls back; nobody is driving the node
    answers = [code for what, code in sim.world.responses if what == f"callback {NODE} installed"]
    assert len(answers) == 1 and 200 <= answers[0] < 300, sim.world.responses

    rec = sim.restart().resume(NODE)

    assert (rec.state, rec.reason) == (S.ACTIVE, None)
    assert sim.backends.log() == HAPPY_CALLS
    assert sim.hook_runs() == ALL_HOOKS


def test_an_install_failure_reported_while_the_daemon_was_down_fails_the_node(
    sim: Sim,
) -> None:
    sim.machine(outcome="failed", message="anaconda: no space left on device")
    sim.world.crash_when = responded(f"kickstart {NODE}")
    with pytest.raises(Crash):
        sim.pipeline().provision(NODE)
    sim.world.sleep(400)

    rec = sim.restart().resume(NODE)

    assert rec.state is S.INSTALLING_FAILED
    assert rec.reason is not None and "anaconda: no space left on device" in rec.reason
    assert sim.backends.log() == HAPPY_CALLS[:4]


def test_resume_leaves_failed_and_finished_nodes_alone(sim: Sim) -> None:
    sim.machine(fetches_kickstart=False)
    failed = sim.pipeline().provision(NODE)
    assert failed.state is S.BOOTING_FAILED
    calls = sim.backends.log()

    rec = sim.restart().resume(NODE)

    assert (rec.state, rec.reason) == (S.BOOTING_FAILED, failed.reason)
    assert sim.backends.log() == calls


# ---- decommission ---------------------------------------------------------------


def walk_to_active(store: Store, name: str = NODE) -> None:
    store.enroll(name)
    for event in ("manage", "provision", "boot", "install", "installed", "configure", "activate"):
        store.transition(name, event, actor="test")


DECOMMISSION_CALLS = ["power_off ctl1", "remove_dhcp_host ctl1", "unpublish_dns ctl1"]


def test_decommission_powers_off_and_removes_dhcp_and_dns(sim: Sim) -> None:
    walk_to_active(sim.store)
    rec = sim.pipeline().decommission(NODE)
    assert rec.state is S.DECOMMISSIONED
    assert sim.backends.log() == DECOMMISSION_CALLS
    assert not rec.build_mode
    assert sim.store.reservation(NODE) is None


def test_a_failed_deployment_can_be_decommissioned(sim: Sim) -> None:
    sim.machine(outcome=None)
    assert sim.pipeline().provision(NODE).state is S.INSTALLING_FAILED
    rec = sim.pipeline().decommission(NODE)
    assert rec.state is S.DECOMMISSIONED
    assert sim.backends.log() == [*HAPPY_CALLS[:4], *DECOMMISSION_CALLS]
    assert "/ks/" not in sim.world.boot_script(NODE)  # its deploy token is dead


def test_decommission_with_the_bmc_down_changes_nothing(sim: Sim) -> None:
    walk_to_active(sim.store)
    sim.backends.fail("power_off", NODE, times=None)
    with pytest.raises(PowerError, match="node ctl1: BMC fake BMC: power off: no answer"):
        sim.pipeline().decommission(NODE)
    assert sim.store.get(NODE).state is S.ACTIVE  # still in DNS and DHCP, still on
    assert sim.backends.log() == ["power_off ctl1 !BmcUnreachable"]
    assert sim.store.reservation(NODE) is None


def test_a_deploying_node_cannot_be_decommissioned(sim: Sim) -> None:
    sim.machine()
    sim.world.crash_when = responded(f"boot {NODE}")
    with pytest.raises(Crash):
        sim.pipeline().provision(NODE)
    calls = sim.backends.log()
    with pytest.raises(StateError):
        sim.restart().decommission(NODE)
    assert sim.store.get(NODE).state is S.BOOTING
    assert sim.backends.log() == calls  # refused before the BMC, DHCP or DNS were touched
