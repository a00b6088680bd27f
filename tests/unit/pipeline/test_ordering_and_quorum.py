from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.errors import QuorumAtRisk
from provisioner.inventory import load_site
from provisioner.pipeline.ordering import rebuild_waves
from provisioner.pipeline.quorum import guard
from provisioner.state.machine import NodeState

ALL = ["ctl1", "ctl2", "ctl3", "net1", "net2", "sto1", "sto2", "cmp1", "cmp2", "cmp3"]


@pytest.fixture
def site(site_dir: Path):
    return load_site(site_dir / "site.yaml")


def test_first_deployment_bootstraps_one_controller_then_the_rest(site) -> None:
    waves = rebuild_waves(site, ALL, {})
    # the other roles need no cluster: they go with the bootstrapping controller
    assert waves == [
        ["ctl1", "net1", "net2", "sto1", "sto2", "cmp1", "cmp2", "cmp3"],
        ["ctl2", "ctl3"],
    ]
    assert rebuild_waves(site, ["ctl3", "ctl2", "ctl1"], {}) == [["ctl1"], ["ctl2", "ctl3"]]
    assert rebuild_waves(site, ["cmp1", "net1"], {}) == [["cmp1", "net1"]]


def test_rolling_rebuild_takes_one_controller_at_a_time(site) -> None:
    states = dict.fromkeys(ALL, NodeState.ACTIVE)
    waves = rebuild_waves(site, ALL, states)
    assert waves[:3] == [["ctl1"], ["ctl2"], ["ctl3"]]
    assert waves[3] == ["net1", "net2", "sto1", "sto2", "cmp1", "cmp2", "cmp3"]


def test_quorum_guard_allows_one_controller_of_three(site) -> None:
    states = dict.fromkeys(ALL, NodeState.ACTIVE)
    guard(site, states, ["ctl2"], "reprovision")


def test_quorum_guard_refuses_when_a_majority_would_be_lost(site) -> None:
    states = dict.fromkeys(ALL, NodeState.ACTIVE)
    states["ctl3"] = NodeState.BOOTING_FAILED
    with pytest.raises(QuorumAtRisk) as raised:
        guard(site, states, ["ctl1"], "reprovision")
    message = str(raised.value)
    assert "1 of 3 controllers healthy (ctl2)" in message
    assert "down already: ctl3" in message
    assert "galera" in message and "--force" in message
    guard(site, states, ["ctl1"], "reprovision", force=True)


def test_quorum_guard_ignores_non_controllers_and_first_deployments(site) -> None:
    guard(site, dict.fromkeys(ALL, NodeState.ACTIVE), ["cmp1", "cmp2", "cmp3"], "power off")
    guard(site, {}, ["ctl1", "ctl2", "ctl3"], "provision")


def test_controllers_never_deployed_are_not_members_down(site) -> None:
    # first deployment, second wave: ctl1 bootstrapped, ctl2/ctl3 join now
    guard(site, {"ctl1": NodeState.ACTIVE}, ["ctl2", "ctl3"], "rebuilding")
    with pytest.raises(QuorumAtRisk):
        guard(site, {"ctl1": NodeState.ACTIVE, "ctl2": NodeState.ACTIVE}, ["ctl1"], "reprovision")
