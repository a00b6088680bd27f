"""The declared transition table."""

from __future__ import annotations

import pytest

from provisioner.state.machine import FAILED_OF, TRANSITIONS, NodeState, allowed_events, target

S = NodeState


def test_happy_path_walks_enrolled_to_active() -> None:
    state = S.ENROLLED
    for event in ("manage", "provision", "boot", "install", "installed", "configure", "activate"):
        nxt = target(state, event)
        assert nxt is not None, f"{event} refused from {state}"
        state = nxt
    assert state is S.ACTIVE


@pytest.mark.parametrize("working", list(FAILED_OF))
def test_every_working_state_can_fail_and_be_reprovisioned(working: NodeState) -> None:
    failed = target(working, "fail")
    assert failed is not None and failed.is_failed
    assert target(failed, "reprovision") is S.PROVISIONING


def test_reprovision_goes_back_into_provisioning() -> None:
    assert target(S.ACTIVE, "reprovision") is S.PROVISIONING


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.ENROLLED, "provision"),  # not yet managed
        (S.READY, "activate"),
        (S.ACTIVE, "install"),
        (S.DECOMMISSIONED, "provision"),
        (S.BOOTING, "activate"),
        (S.PROVISIONING, "decommission"),  # in flight: fail it first
        (S.ACTIVE, "fail"),
    ],
)
def test_illegal_moves_are_not_in_the_table(state: NodeState, event: str) -> None:
    assert target(state, event) is None
    assert event not in allowed_events(state)


def test_every_state_is_reachable() -> None:
    reached = {S.ENROLLED} | set(TRANSITIONS.values())
    assert reached == set(NodeState)
