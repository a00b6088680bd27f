"""FakeBackends on its own: the record of calls and the scripting of failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.errors import BmcUnreachable, DnsmasqError, DnsUnreachable
from provisioner.inventory import Site, load_site
from provisioner.pipeline.backends import Backends
from provisioner.pipeline.fakes import Call, FakeBackends


@pytest.fixture
def site(site_dir: Path) -> Site:
    return load_site(site_dir / "site.yaml")


def test_calls_are_recorded_in_order_and_heard(site: Site) -> None:
    heard: list[Call] = []
    fake = FakeBackends(listener=heard.append)
    backends: Backends = fake  # it is a Backends
    ctl1, cmp1 = site.node("ctl1"), site.node("cmp1")
    backends.publish_dns(site, ctl1)
    backends.add_dhcp_host(site, cmp1)
    backends.set_boot_device(site, ctl1, "network", persistent=False)
    backends.power_cycle(site, ctl1)
    backends.power_off(site, cmp1)
    backends.remove_dhcp_host(site, cmp1)
    backends.unpublish_dns(site, cmp1)
    assert fake.log("ctl1") == [
        "publish_dns ctl1",
        "set_boot_device ctl1 network once",
        "power_cycle ctl1",
    ]
    assert fake.log("cmp1") == [
        "add_dhcp_host cmp1",
        "power_off cmp1",
        "remove_dhcp_host cmp1",
        "unpublish_dns cmp1",
    ]
    assert [str(c) for c in heard] == fake.log()


def test_scripted_failures_raise_what_the_real_backend_would(site: Site) -> None:
    fake = FakeBackends()
    node = site.node("ctl1")
    fake.fail("power_cycle", "ctl1")
    fake.fail("publish_dns", "ctl1")
    fake.fail("add_dhcp_host", "ctl1")
    with pytest.raises(BmcUnreachable, match="node ctl1: BMC fake BMC: power cycle: no answer"):
        fake.power_cycle(site, node)
    with pytest.raises(DnsUnreachable, match="node ctl1"):
        fake.publish_dns(site, node)
    with pytest.raises(DnsmasqError, match="node ctl1"):
        fake.add_dhcp_host(site, node)
    fake.power_cycle(site, node)  # once only: the next one works
    assert fake.count("power_cycle", "ctl1") == 1
    assert fake.log()[0] == "power_cycle ctl1 !BmcUnreachable"


def test_failures_can_repeat_come_after_the_effect_and_be_healed(site: Site) -> None:
    heard: list[str] = []
    fake = FakeBackends(listener=lambda call: heard.append(str(call)))
    node = site.node("ctl1")
    fake.fail("power_off", "ctl1", times=None)
    for _ in range(3):
        with pytest.raises(BmcUnreachable):
            fake.power_off(site, node)
    fake.heal(node="ctl1")
    fake.power_off(site, node)
    assert heard == ["power_off ctl1"]

    fake.fail("power_cycle", "ctl1", error=KeyboardInterrupt(), after=True)
    with pytest.raises(KeyboardInterrupt):
        fake.power_cycle(site, node)
    assert heard[-1] == "power_cycle ctl1"  # it happened; the caller did not learn it
    assert fake.count("power_cycle") == 1


def test_unknown_actions_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown backend action 'reboot'"):
        FakeBackends().fail("reboot", "ctl1")  # type: ignore[arg-type]
