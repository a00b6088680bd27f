"""The deploy token: one derivation, shared by every process of a state dir."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from provisioner.settings import StateDir
from provisioner.state.store import Store
from provisioner.state.tokens import KEY_NAME, DeployTokens


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


# --- One key per database: boot servers on a shared PostgreSQL (issue 22) ----------------------
#
# These run on SQLite and PostgreSQL (``db_url``): the key lives in the database,
# so every instance using it derives the same tokens from its own state dir.


def test_instances_on_one_database_accept_each_others_tokens(
    db_url: str, tmp_path: Path, open_store: Any
) -> None:
    """A token boot server a put in a boot script verifies on b (its own state dir) after
    a takeover; no key file is written in either state dir."""
    store = open_store()
    store.enroll("ctl1")
    store.start_build_mode("ctl1")
    issued_by_a = DeployTokens.from_state_dir(tmp_path / "a", db_url=db_url).token_for(
        store.get("ctl1")
    )
    assert issued_by_a is not None
    b = DeployTokens.from_state_dir(tmp_path / "b", db_url=db_url)
    assert b.verify(open_store().get("ctl1"), issued_by_a)
    for state in ("a", "b"):
        assert not StateDir(tmp_path / state).deploy_token_key.exists()


def test_racing_first_instances_store_one_key(db_url: str, open_store: Any) -> None:
    """On a database without a key, instances starting together all end with the same one."""
    store = open_store()
    store.enroll("ctl1")
    store.start_build_mode("ctl1")
    racers = [open_store() for _ in range(4)]
    start = threading.Barrier(len(racers))

    def first_use(racer: Store) -> str | None:
        start.wait(10)
        return DeployTokens.from_store(racer).token_for(racer.get("ctl1"))

    with ThreadPoolExecutor(len(racers)) as pool:
        tokens = set(pool.map(first_use, racers))
    assert len(tokens) == 1 and None not in tokens
    assert DeployTokens.from_store(store).verify(store.get("ctl1"), str(tokens.pop()))


def test_a_state_dirs_old_key_file_is_carried_into_the_database(tmp_path: Path) -> None:
    """Tokens issued before the upgrade (key in deploy-token.key) still verify after it."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    old_key = b"\x01" * 32
    StateDir(state).deploy_token_key.write_bytes(old_key)
    store = Store.open(state)
    store.enroll("ctl1")
    store.start_build_mode("ctl1")
    before_upgrade = DeployTokens(old_key).token_for(store.get("ctl1"))
    assert before_upgrade is not None
    assert DeployTokens.from_state_dir(state).verify(store.get("ctl1"), before_upgrade)
    StateDir(state).deploy_token_key.unlink()  # the database holds it now
    assert DeployTokens.from_state_dir(state).verify(store.get("ctl1"), before_upgrade)


def test_a_key_another_instance_stored_meanwhile_wins(db_url: str, open_store: Any) -> None:
    """The insert race on PostgreSQL, made deterministic: while one instance makes its key,
    another stores its own; the first one's insert fails and it takes the stored key."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite's writers queue before they read (BEGIN IMMEDIATE): no interleaving")
    first, second = open_store(), open_store()

    def make_while_the_other_stores() -> bytes:
        assert second.shared_key(KEY_NAME, lambda: b"B" * 32) == b"B" * 32
        return b"A" * 32

    assert first.shared_key(KEY_NAME, make_while_the_other_stores) == b"B" * 32
    assert open_store().shared_key(KEY_NAME, lambda: b"C" * 32) == b"B" * 32
