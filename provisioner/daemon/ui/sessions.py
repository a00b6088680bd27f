"""Dashboard sessions: the admin token is shown once, at login, and never again.

A browser proves it holds the daemon's admin token by posting it to the login
form; it then gets a random session id in an ``HttpOnly`` ``SameSite=Strict``
cookie (scripts cannot read it, other sites cannot send it) and a separate CSRF
token that every state-changing request must carry back in a form field or the
``X-CSRF-Token`` header. Sessions live in the daemon's memory only: a restart
logs everyone out, and nothing that grants access is written anywhere.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

#: The session cookie's name (its value is a random id, never the admin token).
COOKIE = "provisioner_session"
#: The short-lived cookie that ties the login form to the browser that loaded it.
LOGIN_COOKIE = "provisioner_login"
#: A session ends this long after its last use.
IDLE_SECONDS = 8 * 3600
#: At most this many live sessions; the oldest goes first.
MAX_SESSIONS = 256


@dataclass
class Session:
    id: str
    csrf: str
    created: float
    last_used: float
    label: str  # a short, non-secret name for the log ("ui-3f2a")


class Sessions:
    """Live dashboard sessions, thread-safe (waitress serves from several threads)."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.idle_seconds = idle_seconds

    def create(self) -> Session:
        now = time.monotonic()
        sid = secrets.token_urlsafe(32)
        session = Session(sid, secrets.token_urlsafe(32), now, now, f"ui-{secrets.token_hex(2)}")
        with self._lock:
            self._by_id[sid] = session
            while len(self._by_id) > MAX_SESSIONS:
                del self._by_id[min(self._by_id.values(), key=lambda s: s.last_used).id]
        return session

    def get(self, sid: str | None) -> Session | None:
        """The live session with this id, or None (unknown, or idle too long)."""
        if not sid:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._by_id.get(sid)
            if session is None:
                return None
            if now - session.last_used > self.idle_seconds:
                del self._by_id[sid]
                return None
            session.last_used = now
            return session

    def end(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)


def same_secret(expected: str, presented: str | None) -> bool:
    """Constant-time comparison; an absent value never matches."""
    return bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())
