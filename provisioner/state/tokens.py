"""Per-deploy one-time tokens for the installer and its callbacks.

A token is an HMAC of (node, deploy id) under a key kept in the state
directory, so the database never holds a usable token and a token is only
valid for the node and the deployment it was made for. Starting a new deploy
(or ending build mode) changes or clears the deploy id, which spends the old
token. Tokens also expire ``max_age`` after the deploy started.

``token_for`` is the one derivation: the boot script route puts its result in
the kickstart URL, and the kickstart and callback routes check what the node
presents against it (``verify``). It is computed once per deploy and process
(the routes of one worker share a ``DeployTokens``), not once per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from provisioner.settings import StateDir
from provisioner.state.keys import create_once
from provisioner.state.store import NodeRecord, utcnow

DEFAULT_MAX_AGE = timedelta(hours=6)
_MEMO_SIZE = 4096  # deploys remembered; more than any site has nodes in build mode


class DeployTokens:
    def __init__(self, key: bytes, max_age: timedelta = DEFAULT_MAX_AGE) -> None:
        if len(key) < 32:
            raise ValueError("deploy token key must be at least 32 bytes")
        self._key = key
        self.max_age = max_age
        self._memo: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:
        return "DeployTokens(<key hidden>)"

    @classmethod
    def from_state_dir(cls, state_dir: Path, max_age: timedelta = DEFAULT_MAX_AGE) -> DeployTokens:
        """Load the key, creating it (mode 0600) on first use."""
        key = create_once(StateDir(state_dir).deploy_token_key, secrets.token_bytes(32))
        return cls(key, max_age)

    def _derive(self, node: str, deploy_id: str) -> str:
        key = (node, deploy_id)
        token = self._memo.get(key)
        if token is None:
            mac = hmac.new(self._key, f"{node}\0{deploy_id}".encode(), hashlib.sha256).digest()
            token = base64.urlsafe_b64encode(mac).decode().rstrip("=")
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = token
        return token

    def token_for(self, record: NodeRecord) -> str | None:
        """The current token of a node in build mode, or None: the one derivation."""
        if not record.build_mode or record.deploy_id is None:
            return None
        return self._derive(record.name, record.deploy_id)

    def verify(self, record: NodeRecord, presented: str, now: datetime | None = None) -> bool:
        """Constant-time check that ``presented`` is this node's live token."""
        expected = self.token_for(record)
        if expected is None or record.deploy_started_at is None:
            # still compare, so timing does not tell "no deploy" from "wrong token"
            hmac.compare_digest(presented.encode(), b"x" * 43)
            return False
        if (now or utcnow()) - record.deploy_started_at > self.max_age:
            return False
        return hmac.compare_digest(presented.encode(), expected.encode())
