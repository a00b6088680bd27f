"""Fixes for pyghmi 1.6 traps that bite both the IPMI client and the virtual BMC.

Applied once, explicitly (``apply()``), never at import time. See LIBRARIES.md:

1. Cipher suite: the client proposes suite 17 (SHA-256) and never looks at what the
   BMC agreed. pyghmi's own ``Bmc`` and many older BMCs answer with suite 3
   (SHA-1), and the client then dies with ``struct.error`` in RAKP2. We read the
   agreed authentication algorithm in the open-session response and switch the
   session to SHA-1 before RAKP starts.
2. Bytes credentials: handled by the callers (``ipmi.py`` passes bytes).
3. The IO thread sets a shared socket non-blocking and then receives, while a
   caller's send sets it blocking in between: the IO thread then blocks in
   ``recvfrom`` forever (deadlock under concurrency). Receiving with
   ``MSG_DONTWAIT`` does not depend on the socket's mode.
4. A lost wake-up in the IO thread's waiter hand-off stalls single commands by
   0.5-1 s at random, and once stalled 96 concurrent commands for good (see
   ``_io_wait_factory``): a waiter now never sleeps past its deadline.
5. A failed login (wrong password) marks the session broken in the IO thread,
   and ``_mark_broken`` logs out, which flags the session broken, before it
   stores the reason: the logging-in caller can wake in between and dies with
   ``AttributeError: errormsg`` instead of "Incorrect password provided". The
   reason is now stored first.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from typing import Any

_applied = False
_lock = threading.Lock()

# open-session response: tag, status, priv, reserved, console sid (4),
# managed sid (4), then 8-byte records for auth, integrity, confidentiality
_AUTH_ALGO_OFFSET = 16
_RAKP_HMAC_SHA1 = 1


def _recvfrom_dontwait(mysocket: socket.socket, size: int) -> tuple[bytes, Any] | None:
    if hasattr(mysocket, "fd"):  # eventlet green socket
        mysocket = mysocket.fd
    try:
        return mysocket.recvfrom(size, socket.MSG_DONTWAIT)
    except OSError:
        return None


# a waiter re-checks at least this often, so a wake-up lost in a race we did not
# foresee costs at most this long instead of pyghmi's 0.5-1 s retry timer
_MAX_WAIT = 0.1


def _io_wait_factory(session: Any, max_wait: float | None) -> Any:
    """pyghmi's ``_io_wait`` without its lost wake-up.

    The IO thread wakes a waiter only if the waiter is registered when the
    answer arrives. A caller that registers just after (it checked its queue,
    the answer came in, then it registered) sleeps until its retry timer: measured
    here as random 0.6-1.2 s stalls of single commands, about one in twenty.
    After registering, we return at once when an answer is already queued, and
    never sleep longer than ``max_wait``; callers loop until their answer is in.
    A BMC server (one waiter, the serve loop) needs no cap: ``max_wait=None``.
    """

    def _io_wait(timeout: float, myaddr: Any = None, evq: Any = None) -> None:
        evt = threading.Event()
        if evq is not None:
            evq.append(evt)
        if max_wait is not None:
            timeout = min(timeout, max_wait)
        deadline = timeout + session._monotonic_time()
        session.ioqueue.append((deadline, evt, myaddr))
        if myaddr is None:  # wait_for_rsp: it drains the shared session queue
            if session.sessionqueue:
                return
        else:  # one session's command: it drains only its own packet queue
            handlers = session.Session.bmc_handlers.get(myaddr, {})
            if any(getattr(h, "pktqueue", None) for h in list(handlers.values())):
                return
        if deadline < session.selectdeadline:
            intsock = session.iosockets[0]
            if hasattr(intsock, "fd"):
                intsock = intsock.fd
            intsock.sendto(b"\x01", (session.myself, session.iosockets[0].getsockname()[1]))
        # never past the deadline, even if the IO thread missed it: a run of 96 threads
        # once slept here for good (the IO thread in a 300 s select, no waiter woken)
        evt.wait(max(0.0, deadline - session._monotonic_time()) + 0.01)

    return _io_wait


def apply(server: bool = False) -> None:
    """Patch pyghmi's session module in place (idempotent, once per process).

    ``server=True`` in a virtual BMC process: no wait cap, so an idle BMC sleeps.
    """
    global _applied
    with _lock:
        if _applied:
            return
        from pyghmi.ipmi.private import session

        session._io_recvfrom = _recvfrom_dontwait
        session._io_wait = _io_wait_factory(session, None if server else _MAX_WAIT)

        original = session.Session._got_rmcp_response

        def _got_rmcp_response(self: Any, data: Any) -> Any:
            if (
                len(data) > _AUTH_ALGO_OFFSET
                and data[1] == 0
                and getattr(self, "attemptedhash", None) == 256
                and self.sessioncontext == "OPENSESSION"
                and data[0] == self.rmcptag
                and data[_AUTH_ALGO_OFFSET] == _RAKP_HMAC_SHA1
            ):
                # the BMC agreed to suite 3, not the suite 17 we proposed
                self.attemptedhash = 1
                self.currhashlib = hashlib.sha1
                self.currhashlen = 12
            return original(self, data)

        session.Session._got_rmcp_response = _got_rmcp_response

        mark_broken = session.Session._mark_broken

        def _mark_broken(self: Any, error: Any = None) -> None:
            self.errormsg = error  # before logout() flags the session broken
            mark_broken(self, error)

        session.Session._mark_broken = _mark_broken
        _applied = True
