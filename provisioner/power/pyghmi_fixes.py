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


def apply() -> None:
    """Patch pyghmi's session module in place (idempotent)."""
    global _applied
    with _lock:
        if _applied:
            return
        from pyghmi.ipmi.private import session

        session._io_recvfrom = _recvfrom_dontwait

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
        _applied = True
