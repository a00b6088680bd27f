"""One thread serving many pyghmi BMC servers (``vbmc serve`` at 200 BMCs).

pyghmi's server side leans on its client machinery: an IO thread receives
every socket's packets and queues them, and the serving thread drains the
queue (``Session.wait_for_rsp``). Several ``Bmc`` objects in one process broke
under load (LIBRARIES.md), for two reasons found in pyghmi 1.6's session.py:

1. the IO thread reads ``Session.bmc_handlers`` while the serving thread adds
   and deletes sessions in it: a lookup between a check and a read raises
   KeyError in the IO thread, and with that thread gone every BMC of the
   process goes deaf;
2. when a client starts over from a UDP source port it used before,
   ``_handle_ipmi_packet`` deletes ``bmc_handlers[client address]``: the
   sessions of *every* BMC of the process with that client address. Clients
   that talk to many BMCs from one socket (pyghmi's own, ipmipower) then lose
   their sessions with the other BMCs mid-command.

3. a client that comes back from a source port an old session of the BMC still
   holds (a client process killed and its port reused) has its new Open Session
   Request handed to that old session, which checks the login packets against
   the old session's integrity key and drops them: the login times out.

So here there is no IO thread: one loop waits on all the BMCs' sockets
(epoll) and hands each packet to its session or its server in the same
thread, as pyghmi's queue would, so nothing runs concurrently on pyghmi's
tables. ``bmc_handlers`` becomes a dict whose deletion of a client address
only drops that client's session with the BMC being served, and an Open
Session Request always goes to the BMC's server, which starts a new session.

A process that uses this must call ``prepare()`` before its first ``Bmc``.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)


class _NoIoThread:
    """Stands in pyghmi's ``session.iothread`` so that none is started."""

    name = "vbmc-ioloop (no pyghmi IO thread)"


class _PerPortHandlers(dict[Any, Any]):
    """pyghmi's ``Session.bmc_handlers``: client address -> {BMC port: session}.

    ``del handlers[client]`` (pyghmi forgetting a client that starts over)
    removes only that client's session with the BMC being served."""

    serving_port: int | None = None

    def __delitem__(self, key: Any) -> None:
        inner = self.get(key)
        if isinstance(inner, dict) and self.serving_port is not None:
            inner.pop(self.serving_port, None)
            if inner:
                return
        super().__delitem__(key)


_prepared = False
_handlers: _PerPortHandlers | None = None


def prepare() -> None:
    """Set pyghmi up for this loop (once per process, before any ``Bmc`` is made)."""
    global _prepared, _handlers
    if _prepared:
        return
    from pyghmi.ipmi.private import session

    if session.iothread is not None:
        raise RuntimeError("pyghmi's IO thread already runs in this process")
    session.iothread = _NoIoThread()
    session.iothreadready = True
    _handlers = _PerPortHandlers(session.Session.bmc_handlers)
    session.Session.bmc_handlers = _handlers
    _prepared = True


_RMCP_PLUS = 6
_OPEN_SESSION_REQUEST = 0x10


def _opens_a_session(data: bytes) -> bool:
    """An RMCP+ Open Session Request (IPMI 2.0 table 13-8: auth type 6, payload 0x10)."""
    return len(data) > 5 and data[4] == _RMCP_PLUS and data[5] & 0x3F == _OPEN_SESSION_REQUEST


def _dispatch(sock: socket.socket, port: int, data: bytes, addr: Any) -> None:
    """What pyghmi's ``_io_graball`` + ``process_pktqueue`` do with one packet."""
    if len(data) < 4:  # pyghmi's wake-up byte, or nothing IPMI
        return
    assert _handlers is not None
    sessions = _handlers.get(addr)
    if sessions is not None and port in sessions and not _opens_a_session(data):
        target = sessions[port]
        target.pktqueue.append((data, addr, sock, True))
    elif sock in _handlers:
        target = _handlers[sock][0]  # the BMC server itself: a new or sessionless client
        target.pktqueue.append((data, addr, sock, False))
    else:
        return
    _handlers.serving_port = port
    try:
        target.process_pktqueue()
    finally:
        _handlers.serving_port = None


def run(bmcs: Sequence[Any], stop: threading.Event, tick: float = 0.5) -> None:
    """Serve ``bmcs`` (pyghmi ``Bmc`` objects) until ``stop`` is set.

    A packet that makes a BMC raise is logged and dropped: one client's bad
    packet must not stop the other BMCs of the process."""
    if not _prepared:
        raise RuntimeError("ioloop.prepare() must run before the BMCs are made")
    selector = selectors.DefaultSelector()
    for bmc in bmcs:
        sock = bmc.serversocket
        selector.register(sock, selectors.EVENT_READ, (sock, sock.getsockname()[1], bmc))
    try:
        while not stop.is_set():
            for key, _ in selector.select(tick):
                sock, port, bmc = key.data
                for _ in range(64):  # then let the other sockets have a turn
                    try:  # MSG_DONTWAIT: pyghmi's send makes the socket blocking
                        data, addr = sock.recvfrom(3000, socket.MSG_DONTWAIT)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as exc:
                        log.warning("BMC on port %d: receive failed: %s", port, exc)
                        break
                    try:
                        _dispatch(sock, port, data, addr)
                    except Exception:
                        log.exception("BMC on port %d: packet from %s dropped", port, addr)
    finally:
        selector.close()
