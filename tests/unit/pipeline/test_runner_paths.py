"""Pipeline.provision on a simulated site: the way through, and every way it can fail.

Each test asserts what an operator sees afterwards: the node's state and reason
(`provisioner nodes show`), the backend calls made (what happened to the BMC,
DNS and DHCP), and what the node's firmware gets next from the boot server.
"""

from __future__ import annotations

import pytest

from provisioner.errors import BmcAuthError, DnsUnreachable
from provisioner.inventory.models import ImageSource
from provisioner.state.machine import NodeState
from tests.unit.pipeline.simsite import HAPPY_CALLS, KERNEL, MAC, NODE, TIMEOUTS, Sim

S = NodeState
BEFORE_POWER = HAPPY_CALLS[:3]  # dns, dhcp, one-time network boot
UP_TO_POWER = HAPPY_CALLS[:4]


def ok(status: int) -> bool:
    return 200 <= status < 300


def test_a_node_goes_all_the_way_to_active(sim: Sim) -> None:
    sim.machine()
    rec = sim.pipeline().provision(NODE)

    assert (rec.state, rec.reason) == (S.ACTIVE, None)
    assert sim.backends.log() == HAPPY_CALLS
    # the machine did each step once over HTTP, and every answer was a success
    whats = [what for what, _ in sim.world.responses]
    assert whats == [f"boot {NODE}", f"kickstart {NODE}", f"callback {NODE} installed"]
    assert all(ok(status) for _, status in sim.world.responses), sim.world.responses
    # the hooks ran in the pipeline, in order, once each: bundled common ones, then the site's
    assert sim.hook_runs() == [
        "common/10-record-context exited 0",
        "unit/10-first exited 0",
        "unit/20-second exited 0",
        "unit/30-third exited 0",
    ]
    assert any(m.endswith("first hook on ctl1") for m in sim.events())
    # the install is over: no build mode, and the next network boot goes to the disk
    assert not sim.store.get(NODE).build_mode
    assert "/ks/" not in sim.world.boot_script(NODE)
    # and the simulated hours it took are the machine's own times, not the timeouts
    assert sim.world.now < 20 + 30 + 300 + 4 * TIMEOUTS.poll


def test_the_spent_token_cannot_call_back_again(sim: Sim) -> None:
    sim.machine()
    assert sim.pipeline().provision(NODE).state is S.ACTIVE
    assert sim.world.post_callback(NODE, "installed") == 403
    assert sim.world.post_callback(NODE, "failed", "replayed") == 403
    rec = sim.store.get(NODE)
    assert (rec.state, rec.reason) == (S.ACTIVE, None)


def test_bmc_down_at_the_power_cycle_fails_provisioning_naming_the_step(sim: Sim) -> None:
    sim.machine()
    sim.backends.fail("power_cycle", NODE, times=None)
    rec = sim.pipeline().provision(NODE)

    assert rec.state is S.PROVISIONING_FAILED
    assert rec.reason == "power cycle: node ctl1: BMC fake BMC: power cycle: no answer"
    assert sim.backends.log() == [*BEFORE_POWER, "power_cycle ctl1 !BmcUnreachable"]
    assert sim.world.responses == []  # the machine never booted


def test_bmc_rejecting_the_boot_device_fails_before_any_power_cycle(sim: Sim) -> None:
    sim.machine()
    sim.backends.fail(
        "set_boot_device", NODE, BmcAuthError(NODE, "10.0.0.1:623", "credentials rejected")
    )
    rec = sim.pipeline().provision(NODE)

    assert rec.state is S.PROVISIONING_FAILED
    assert rec.reason == (
        "one-time network boot: node ctl1: BMC 10.0.0.1:623: credentials rejected"
    )
    assert sim.backends.log() == [
        "publish_dns ctl1",
        "add_dhcp_host ctl1",
        "set_boot_device ctl1 network once !BmcAuthError",
    ]
    assert sim.backends.count("power_cycle") == 0


def test_dns_down_fails_provisioning_before_anything_else(sim: Sim) -> None:
    sim.backends.fail("publish_dns", NODE, DnsUnreachable("192.0.2.3:53: no answer"))
    rec = sim.pipeline().provision(NODE)
    assert (rec.state, rec.reason) == (S.PROVISIONING_FAILED, "dns: 192.0.2.3:53: no answer")
    assert sim.backends.log() == ["publish_dns ctl1 !DnsUnreachable"]


def test_no_network_boot_is_retried_with_a_second_power_cycle_then_fails(sim: Sim) -> None:
    sim.machine(boots_on_cycle=None)  # the NIC never PXE boots
    rec = sim.pipeline().provision(NODE)

    assert rec.state is S.BOOTING_FAILED
    assert rec.reason == (
        "wait for boot script: the node did not fetch its boot script within 120s "
        "(2 power cycle(s))"
    )
    assert sim.backends.log() == [
        *UP_TO_POWER,
        "set_boot_device ctl1 network once",
        "power_cycle ctl1",
    ]
    assert sim.world.now >= 2 * TIMEOUTS.boot_script
    assert sim.store.get(NODE).build_mode  # still deploying: its token stays live until then


def test_a_node_that_boots_on_the_retry_gets_installed(sim: Sim) -> None:
    sim.machine(boots_on_cycle=2)  # the first boot went to the disk (a stale boot order)
    rec = sim.pipeline().provision(NODE)

    assert (rec.state, rec.reason) == (S.ACTIVE, None)
    assert sim.backends.log() == [
        *UP_TO_POWER,
        "set_boot_device ctl1 network once",
        "power_cycle ctl1",
        "set_boot_device ctl1 disk persistent",
    ]


def test_more_power_retries_are_a_setting(sim: Sim) -> None:
    sim.machine(boots_on_cycle=None)
    rec = sim.pipeline(power_retries=0).provision(NODE)
    assert rec.state is S.BOOTING_FAILED
    assert rec.reason is not None and rec.reason.endswith("within 120s (1 power cycle(s))")
    assert sim.backends.count("power_cycle") == 1


def test_no_kickstart_fetch_fails_booting_without_another_power_cycle(sim: Sim) -> None:
    sim.machine(fetches_kickstart=False)  # e.g. the installer image cannot reach us
    rec = sim.pipeline().provision(NODE)

    assert rec.state is S.BOOTING_FAILED
    assert rec.reason == (
        "wait for kickstart: the installer did not fetch its kickstart within 120s"
    )
    assert sim.backends.log() == UP_TO_POWER
    assert [what for what, _ in sim.world.responses] == [f"boot {NODE}"]


def test_no_callback_fails_installing_after_its_timeout(sim: Sim) -> None:
    sim.machine(outcome=None)  # the install hangs, or %post cannot reach us
    rec = sim.pipeline().provision(NODE)

    assert rec.state is S.INSTALLING_FAILED
    assert rec.reason == ("wait for installed callback: the node never called back within 900s")
    assert sim.backends.log() == UP_TO_POWER  # never pointed at its disk
    assert sim.world.now >= 20 + 30 + TIMEOUTS.installed


def test_an_image_install_waits_for_the_installed_system_to_report_its_boot(sim: Sim) -> None:
    sim.installs_images()
    sim.machine(first_boot=80)
    rec = sim.pipeline().provision(NODE)

    assert (rec.state, rec.reason) == (S.ACTIVE, None)
    assert sim.world.responses[-3:] == [
        (f"callback {NODE} installed", 202),
        (f"callback {NODE} booted", 202),  # the spent token still says who it is, once installed
        (f"callback {NODE} applied", 202),
    ]
    assert f"booted from disk: kernel {KERNEL}" in sim.events()
    # the hooks started only after the node ran its own OS
    messages = sim.events()
    booted = messages.index(f"booted from disk: kernel {KERNEL}")
    assert all(i > booted for i, m in enumerate(messages) if m.startswith("hook "))
    assert sim.world.now >= 20 + 30 + 300 + 80 + 120
    # active only after the node reported its bundle applied, which came after the hooks
    applied = messages.index("bundle applied: files ok (1 s), galera ok (41 s)")
    assert all(i < applied for i, m in enumerate(messages) if m.startswith("hook "))
    activated = [e.id for e in sim.store.events(NODE) if e.event == "activate"]
    applied_id = sim.store.events(NODE)[applied].id
    assert len(activated) == 1 and activated[0] > applied_id


def test_an_image_install_that_fails_to_apply_is_failed_with_the_service_and_its_log(
    sim: Sim,
) -> None:
    sim.installs_images()
    sim.machine(
        first_boot=80,
        apply_report={
            "status": "apply-failed",
            "services": [
                {"name": "files", "result": "ok", "seconds": 1},
                {"name": "galera", "result": "ok", "seconds": 40},
                {"name": "rabbitmq", "result": "failed", "seconds": 300,
                 "detail": "gave up after 300 s waiting for: rabbitmqctl -q await_startup"},
            ],
            "failed_service": "rabbitmq",
            "log": "Job for rabbitmq-server.service failed.\nSee journalctl -xeu rabbitmq-server",
        },
    )  # fmt: skip
    rec = sim.pipeline().provision(NODE)

    assert rec.state is S.CONFIGURING_FAILED
    assert rec.reason == (
        "wait for applied callback: apply failed: rabbitmq failed: gave up after 300 s waiting "
        "for: rabbitmqctl -q await_startup (up before it: files, galera); log: Job for "
        "rabbitmq-server.service failed. | See journalctl -xeu rabbitmq-server"
    )
    assert len(sim.hook_runs()) == 4  # the hooks ran; the node itself failed after them


def test_an_image_install_that_never_reports_its_apply_fails_naming_the_wait(sim: Sim) -> None:
    sim.installs_images()
    sim.machine(first_boot=80, applies=None)  # e.g. the apply unit hangs on a service
    rec = sim.pipeline().provision(NODE)

    assert rec.state is S.CONFIGURING_FAILED
    assert rec.reason == (
        "wait for applied callback: the node did not report its bundle applied within "
        f"{TIMEOUTS.applied:g}s"
    )


def test_an_installed_system_that_never_boots_fails_naming_the_wait(sim: Sim) -> None:
    sim.installs_images()
    sim.machine(first_boot=None)  # e.g. GRUB missing on the disk, or no network on first boot
    rec = sim.pipeline().provision(NODE)

    assert rec.state is S.INSTALLED_FAILED
    assert rec.reason == (
        "wait for booted callback: the installed system did not report booting from its "
        f"disk within {TIMEOUTS.booted:g}s"
    )
    assert sim.backends.log() == HAPPY_CALLS  # it was pointed at its disk, then waited
    assert sim.hook_runs() == []  # no hook ran on a node that never came up


def test_a_package_install_does_not_wait_for_a_first_boot_callback(sim: Sim) -> None:
    sim.machine(first_boot=None)  # a real distribution installer: no first-boot unit
    assert sim.pipeline().provision(NODE).state is S.ACTIVE


def test_the_installer_reporting_failure_fails_installing_with_its_message(sim: Sim) -> None:
    sim.machine(outcome="failed", message="no disk matches min_size_gb 20")
    rec = sim.pipeline().provision(NODE)

    assert rec.state is S.INSTALLING_FAILED
    assert rec.reason is not None and "no disk matches min_size_gb 20" in rec.reason
    assert sim.backends.log() == UP_TO_POWER
    assert all(ok(status) for _, status in sim.world.responses), sim.world.responses
    # the failed install spent its token: no replay, and no reinstall loop on the next boot
    assert sim.world.post_callback(NODE, "installed") == 403
    assert sim.store.get(NODE).state is S.INSTALLING_FAILED
    assert "/ks/" not in sim.world.boot_script(NODE)
    # the pipeline stopped waiting at once, not at the callback timeout
    assert sim.world.now < 20 + 30 + 300 + TIMEOUTS.installed / 2


def test_a_failing_hook_fails_configuring_naming_the_hook(sim: Sim) -> None:
    sim.write_hook("20-second", "#!/bin/sh\necho cannot reach galera >&2\nexit 3\n")
    sim.machine()
    rec = sim.pipeline().provision(NODE)

    assert rec.state is S.CONFIGURING_FAILED
    assert rec.reason == "hook unit/20-second failed with exit code 3"
    assert rec.step == "hook:unit/20-second"  # `hooks rerun` starts here
    assert sim.hook_runs() == [
        "common/10-record-context exited 0",
        "unit/10-first exited 0",
        "unit/20-second exited 3",
    ]
    assert any("cannot reach galera" in m for m in sim.events())
    assert sim.backends.log() == HAPPY_CALLS  # installed, pointed at its disk, then the hooks


def test_a_node_not_in_the_inventory_is_refused_before_anything(sim: Sim) -> None:
    from provisioner.errors import UnknownNode

    with pytest.raises(UnknownNode):
        sim.pipeline().provision("nope")
    assert sim.backends.log() == []


def test_an_active_node_is_only_reinstalled_on_reprovision(sim: Sim) -> None:
    from provisioner.errors import StateError

    sim.machine()
    assert sim.pipeline().provision(NODE).state is S.ACTIVE
    with pytest.raises(StateError, match="already active"):
        sim.pipeline().provision(NODE)
    assert sim.backends.log() == HAPPY_CALLS

    sim.machine()  # the same machine, booted again
    rec = sim.pipeline().provision(NODE, reprovision=True)
    assert (rec.state, rec.reason) == (S.ACTIVE, None)
    assert sim.backends.log() == HAPPY_CALLS + HAPPY_CALLS
    assert MAC in sim.site.node(NODE).macs


def test_an_image_profile_that_does_not_apply_bundles_is_active_after_its_hooks(
    sim: Sim,
) -> None:
    sim.installs_images()
    profiles = {
        n: p.model_copy(update={"image": ImageSource(apply_bundle=False)})
        for n, p in sim.site.profiles.items()
    }
    sim.site = sim.site.model_copy(update={"profiles": profiles})
    sim.machine(first_boot=80, applies=None)  # e.g. the user-mode lab: no peers to join
    rec = sim.pipeline().provision(NODE)

    assert (rec.state, rec.reason) == (S.ACTIVE, None)
    assert [what for what, _ in sim.world.responses][-1] == f"callback {NODE} booted"
