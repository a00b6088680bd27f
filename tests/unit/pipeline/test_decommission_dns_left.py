"""Decommission next to a DNS record the site cannot prove it wrote (issue 18)."""

from __future__ import annotations

from provisioner.state.machine import NodeState as S
from tests.unit.pipeline.simsite import NODE, Sim

LEFT = "node ctl1: 99.2.0.192.in-addr.arpa. (address 192.0.2.99) PTR ctl1.lab.example.test. left"


def test_decommission_completes_and_says_which_record_it_left(sim: Sim) -> None:
    sim.store.enroll(NODE)
    sim.backends.dns_left[NODE] = [LEFT]
    rec = sim.pipeline().decommission(NODE)
    assert rec.state is S.DECOMMISSIONED
    assert rec.reason == ("1 DNS record(s) not published by provisioner left in place: " + LEFT)
    messages = [e.message for e in sim.store.events(NODE)]
    assert f"DNS record left in place: {LEFT}" in messages
    assert sim.store.get(NODE).state is S.DECOMMISSIONED


def test_decommission_with_nothing_left_has_no_reason(sim: Sim) -> None:
    sim.store.enroll(NODE)
    rec = sim.pipeline().decommission(NODE)
    assert rec.state is S.DECOMMISSIONED and rec.reason is None
