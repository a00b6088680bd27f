"""The deploy token: one derivation, shared by every process of a state dir."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from provisioner.state.store import Store
from provisioner.state.tokens import DeployTokens


def test_the_token_a_boot_script_carries_verifies_in_another_process(tmp_path: Path) -> None:
    """The boot script route of one worker makes it, the kickstart route of another checks it."""
    state = tmp_path / "state"
    store = Store.open(state)
    store.enroll("ctl1")
    store.start_build_mode("ctl1")
    served = DeployTokens.from_state_dir(state).token_for(store.get("ctl1"))
    script = (
        "from pathlib import Path\n"
        "from provisioner.state.store import Store\n"
        "from provisioner.state.tokens import DeployTokens\n"
        f"state = Path({str(state)!r})\n"
        "print(DeployTokens.from_state_dir(state).token_for(Store.open(state).get('ctl1')))\n"
    )
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert other.returncode == 0, other.stderr
    assert served is not None and other.stdout.strip() == served
    assert DeployTokens.from_state_dir(state).verify(store.get("ctl1"), served)


def test_a_token_expires_max_age_after_its_deploy_started(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state")
    store.enroll("ctl1")
    store.start_build_mode("ctl1")
    record = store.get("ctl1")
    tokens = DeployTokens.from_state_dir(tmp_path / "state", max_age=timedelta(hours=1))
    token = tokens.token_for(record)
    assert token is not None and record.deploy_started_at is not None
    late = record.deploy_started_at + timedelta(hours=1, seconds=1)
    assert tokens.verify(record, token, now=record.deploy_started_at + timedelta(minutes=59))
    assert not tokens.verify(record, token, now=late)
    assert "<key hidden>" in repr(tokens)
