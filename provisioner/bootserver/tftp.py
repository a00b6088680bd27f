"""TFTP for the iPXE binaries only (tftpy), read-only, in its own thread.

tftpy is given an empty private root, so it never opens a file by itself: every
read goes through ``IpxeFiles.open``, which refuses absolute paths, ``..``,
anything that resolves outside the real root (symlinks included) and anything
that is not a regular file. Writes are refused by an ``upload_open`` that
returns nothing (tftpy would otherwise accept uploads).

Every refusal is logged with the client and, when known, the node, *before*
the error reply is sent: each new session's first request is screened by
``_ScreenedStart`` (installed through the server's session table), so a client
that got its error can rely on the line being in the log already. tftpy's own
path check would otherwise answer first and only then raise the exception its
loop logs, which made the refusal line arrive after the client's answer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import tftpy
from tftpy.TftpPacketTypes import TftpPacketERR, TftpPacketRRQ, TftpPacketWRQ
from tftpy.TftpShared import (
    MAX_BLKSIZE,
    TftpErrors,
    TftpException,
    TftpTimeout,
    TftpTimeoutExpectACK,
)
from tftpy.TftpStates import TftpStateServerStart

from provisioner.errors import TftpError

log = logging.getLogger(__name__)

DEBIAN_IPXE_DIR = Path("/usr/lib/ipxe")
#: The iPXE binaries taken from Debian's ipxe package (some are symlinks into /boot).
IPXE_BINARIES = ("undionly.kpxe", "undionly.kkpxe", "ipxe.pxe", "ipxe.efi", "snponly.efi")


class IpxeFiles:
    """Read-only view of one folder of boot binaries."""

    def __init__(self, root: Path, who: Callable[[str], str | None] = lambda ip: None) -> None:
        self.root = root.resolve()
        self.who = who

    def _client(self, address: str) -> str:
        node = self.who(address)
        return f"node {node} ({address})" if node else f"client {address}"

    def refuse(self, name: str, address: str, why: str) -> None:
        log.warning("tftp: %s: refused %r: %s", self._client(address), name, why)

    def resolve(self, name: str) -> Path | str:
        """The file to serve for a requested ``name``, or why it is refused."""
        if not name or "\0" in name:
            return "empty or malformed name"
        if name.startswith(("/", "\\")):
            return "absolute path"
        parts = name.replace("\\", "/").split("/")
        if ".." in parts:
            return "'..' in path"
        try:
            path = (self.root / name).resolve(strict=True)
        except (OSError, RuntimeError):
            return "no such file"
        if not path.is_relative_to(self.root):
            return "leads outside the TFTP root"
        if not path.is_file():
            return "not a regular file"
        return path

    def open(self, name: str, raddress: str = "?", rport: int = 0, **_: Any) -> IO[bytes] | None:
        """tftpy's dyn_file_func: a real file object (never BytesIO, see LIBRARIES.md)."""
        found = self.resolve(name)
        if isinstance(found, str):
            self.refuse(name, raddress, found)
            return None
        log.info("tftp: %s: sending %s", self._client(raddress), name)
        return found.open("rb")

    def refuse_upload(self, path: str, context: Any) -> None:
        """tftpy's upload_open: never accept a write."""
        self.refuse(os.path.basename(path), getattr(context, "host", "?"), "write request")
        return None


def stage_ipxe_binaries(source: Path, dest: Path) -> Path:
    """Copy the iPXE binaries of a trusted package folder into ``dest``.

    Debian's folder links ipxe.efi to /boot, which a strict root would refuse;
    serving a private copy keeps the rule simple: nothing in the served root
    may lead outside it.
    """
    dest.mkdir(parents=True, exist_ok=True)
    staged = 0
    for name in IPXE_BINARIES:
        src = source / name
        if not src.is_file():
            continue
        target = dest / name
        data = src.read_bytes()
        if not target.is_file() or target.is_symlink() or target.read_bytes() != data:
            tmp = dest / f".{name}.tmp"
            tmp.write_bytes(data)
            tmp.chmod(0o444)
            os.replace(tmp, target)
        staged += 1
    if staged == 0:
        raise TftpError(f"no iPXE binaries in {source} (install Debian's ipxe package)")
    return dest


#: RFC 2347: a request, options included, fits in 512 bytes.
MAX_REQUEST = 512
#: Sessions held at once; beyond it a new request is answered "busy" (a flood of
#: requests that never ACK would otherwise hold a socket each until they time out).
MAX_SESSIONS = 128
#: Options whose values tftpy converts with int(): they must be short decimals.
NUMERIC_OPTIONS = frozenset({"blksize", "tsize", "timeout", "windowsize"})
_PRINTABLE = frozenset(range(0x20, 0x7F))


def screen_request(buffer: bytes) -> str | None:
    """Why the first datagram of a session is not a well-formed RRQ/WRQ, or None.

    Stricter than tftpy on purpose: everything tftpy would choke on (non-ASCII,
    a NUL inside a field, odd option lists, non-numeric sizes) is refused here,
    so tftpy only ever parses what it can.
    """
    if len(buffer) < 4:
        return f"truncated datagram ({len(buffer)} bytes)"
    opcode = int.from_bytes(buffer[:2], "big")
    if opcode not in (1, 2):
        return f"not a request (opcode {opcode})"
    if len(buffer) > MAX_REQUEST:
        return f"request of {len(buffer)} bytes (at most {MAX_REQUEST})"
    if not buffer.endswith(b"\0"):
        return "request not NUL-terminated"
    fields = buffer[2:-1].split(b"\0")
    if len(fields) < 2 or len(fields) % 2:
        return "request fields not in name/mode/option pairs"
    for field in fields:
        if not field or not _PRINTABLE.issuperset(field):
            return "empty or non-printable field in request"
    if fields[1].decode().lower() not in ("octet", "netascii"):
        return "unsupported transfer mode"
    names = fields[2::2]
    for key, value in zip(names, fields[3::2], strict=True):
        if key.decode().lower() in NUMERIC_OPTIONS and not (value.isdigit() and len(value) <= 10):
            return f"option {key.decode()!r} is not a number"
    if len({n.lower() for n in names}) != len(names):
        return "an option given twice"
    return None


class _LogQuota:
    """At most ``lines`` warnings per ``window`` seconds; the rest are counted.

    A flood of bad datagrams must not turn into a flood of log lines.
    """

    def __init__(self, lines: int = 20, window: float = 60.0) -> None:
        self.lines, self.window = lines, window
        self.started = 0.0
        self.used = self.dropped = 0
        self.lock = threading.Lock()

    def allow(self) -> bool:
        with self.lock:
            now = time.monotonic()
            if now - self.started >= self.window:
                if self.dropped:
                    log.warning("tftp: %d more bad datagrams were not logged", self.dropped)
                self.started, self.used, self.dropped = now, 0, 0
            if self.used < self.lines:
                self.used += 1
                return True
            self.dropped += 1
            return False


def _error_packet(code: int) -> bytes:
    pkt = TftpPacketERR()
    pkt.errorcode = code
    return bytes(pkt.encode().buffer)


class _ScreenedStart(TftpStateServerStart):
    """tftpy's first state of a server session, with our refusals first.

    A refused request is logged, then answered with a TFTP error, then ends the
    session through tftpy's usual exception; a request that passes goes on to
    tftpy unchanged (its own path check and ``dyn_file_func`` still apply).
    """

    def __init__(self, context: Any, files: IpxeFiles) -> None:
        super().__init__(context)
        self.files = files

    def handle(self, pkt: Any, raddress: str, rport: int) -> Any:
        if isinstance(pkt, TftpPacketWRQ):
            why, code = "write request", TftpErrors.AccessViolation
        elif isinstance(pkt, TftpPacketRRQ):
            found = self.files.resolve(pkt.filename)
            if not isinstance(found, str):
                return super().handle(pkt, raddress, rport)
            why, code = found, TftpErrors.FileNotFound
        else:
            return super().handle(pkt, raddress, rport)
        self.files.refuse(pkt.filename, raddress, why)  # logged before the client hears
        self.context.tidport = rport  # tftpy sets it in serverInitial, which we skip
        self.sendError(code)
        raise TftpException(f"refused: {why}")


class _Sessions(dict[str, Any]):
    """tftpy's session table: every new session starts in ``_ScreenedStart``.

    tftpy creates a session context per client and stores it here before
    handing it the first packet; that store is the one hook it offers between
    the two without patching the library. Each context also gets the guarded
    ``start`` and ``cycle`` of ``_guard``.
    """

    def __init__(self, files: IpxeFiles, quota: _LogQuota) -> None:
        super().__init__()
        self.files = files
        self.quota = quota
        self.malformed = 0
        self.quiet = False  # stopping: our own wake-up datagram is not worth a line

    def __setitem__(self, key: str, context: Any) -> None:
        if isinstance(context.state, TftpStateServerStart):
            context.state = _ScreenedStart(context, self.files)
            _guard(context, self, busy=len(self) >= MAX_SESSIONS)
        super().__setitem__(key, context)

    def bad(self, context: Any, raddress: str, why: str) -> None:
        self.malformed += 1
        if not self.quiet and self.quota.allow():
            log.warning("tftp: %s: dropped bad datagram: %s", self.files._client(raddress), why)


def _guard(context: Any, sessions: _Sessions, busy: bool) -> None:
    """Wrap one tftpy server context so no datagram can raise past it.

    Everything that ends a session leaves as ``TftpException`` (the one error
    tftpy's loop handles per session); nothing else may escape.
    """
    tftpy_start, sock = context.start, context.sock

    def reply(code: int, to: tuple[str, int]) -> None:
        with contextlib.suppress(OSError):
            sock.sendto(_error_packet(code), to)

    def start(buffer: bytes) -> None:
        peer = (context.host, context.port)
        # tftpy's loop checks every session for a timeout before it deletes the
        # ones that failed; one that never saw traffic (last_update 0) would be
        # "resent" and tftpy asserts there is a last packet: set it first
        context.last_update = time.time()
        why = screen_request(buffer)
        if why is None and busy:
            why = f"server busy ({MAX_SESSIONS} transfers running)"
        if why is not None:
            sessions.bad(context, context.host, why)
            if buffer[:2] != b"\0\5":  # never answer an error with an error
                reply(TftpErrors.NotDefined if busy else TftpErrors.IllegalTftpOp, peer)
            raise TftpException(f"refused: {why}")
        try:
            tftpy_start(buffer)
        except (TftpException, TftpTimeoutExpectACK):
            raise
        except Exception as exc:  # tftpy's parser or option handling
            sessions.bad(context, context.host, f"{type(exc).__name__}: {exc}")
            reply(TftpErrors.IllegalTftpOp, peer)
            raise TftpException(f"refused: {type(exc).__name__}") from exc

    def cycle() -> None:
        """tftpy's cycle, but a stranger's datagram is answered and ignored.

        tftpy logs "Discarding" for a datagram from another address or port and
        then handles it anyway, so anyone could end someone else's transfer.
        """
        try:
            buffer, (raddress, rport) = sock.recvfrom(MAX_BLKSIZE)
        except TimeoutError as exc:
            raise TftpTimeout("timed out waiting for traffic") from exc
        except OSError as exc:
            raise TftpException(f"receive failed: {exc}") from exc
        if raddress != context.address or rport != context.port:
            sessions.bad(context, raddress, f"datagram for another client's transfer ({rport})")
            if buffer[:2] != b"\0\5":
                reply(TftpErrors.UnknownTID, (raddress, rport))
            return
        context.last_update = time.time()
        try:
            packet = context.factory.parse(buffer)
            context.state = context.state.handle(packet, raddress, rport)
        except (TftpException, TftpTimeoutExpectACK):
            raise
        except Exception as exc:
            sessions.bad(context, raddress, f"{type(exc).__name__}: {exc}")
            reply(TftpErrors.IllegalTftpOp, (raddress, rport))
            raise TftpException(f"refused: {type(exc).__name__}") from exc
        context.retry_count = 0

    context.start = start
    context.cycle = cycle


class _TftpyRefusals(logging.Filter):
    """Quiet tftpy's lines for sessions we ended; report its own refusals.

    tftpy's 'bad file path' line only appears if a request got past
    ``_ScreenedStart`` (it refuses every ``..``): it is still reported, late.
    """

    def __init__(self, files: IpxeFiles) -> None:
        super().__init__()
        self.files = files
        self.stopping = False  # our own wake-up packet is not worth a line

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith("Fatal exception thrown from session"):
            return True
        if self.stopping:
            return False
        if message.endswith("bad file path"):
            # "Fatal exception thrown from session 1.2.3.4:5678: bad file path"
            address = message.split("session", 1)[1].strip().split(":", 1)[0]
            self.files.refuse("(a path)", address, "climbs out of the root")
            return False
        if "Received ERR packet from peer" in message:
            # firmware often asks for tsize, then aborts and asks again: not an error
            log.debug("tftp: client ended a transfer: %s", message.split(":", 2)[-1].strip())
            return False
        # refusals we made ourselves were logged already
        return not (
            "refused: " in message or "File not found" in message or "not permitted" in message
        )


class TftpService:
    """tftpy in a daemon thread; ``start`` returns once the socket is bound."""

    def __init__(
        self,
        root: Path,
        address: str = "0.0.0.0",
        port: int = 69,
        who: Callable[[str], str | None] = lambda ip: None,
    ) -> None:
        if not root.is_dir():
            raise TftpError(f"TFTP root {root} is not a folder (install ipxe, or set --tftp-root)")
        self.files = IpxeFiles(root, who)
        self.address = address
        self.port = port
        self._empty = tempfile.TemporaryDirectory(prefix="provisioner-tftp-")
        os.chmod(self._empty.name, 0o500)
        self._server = tftpy.TftpServer(
            self._empty.name,
            dyn_file_func=self.files.open,
            upload_open=self.files.refuse_upload,
        )
        self._quota = _LogQuota()
        self._server.sessions = _Sessions(self.files, self._quota)
        #: times tftpy's loop died and was started again (should stay 0)
        self.restarts = 0
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._filter = _TftpyRefusals(self.files)

    def _run(self) -> None:
        """tftpy's loop; if it ever dies on an unexpected error, start it again."""
        while True:
            try:
                self._server.listen(self.address, self.port)
                return  # stopped
            except Exception as exc:
                if not self._server.is_running.is_set() or self._filter.stopping:
                    self._error = exc  # could not bind: start() reports it
                    self._server.is_running.set()  # wake start()
                    return
                self.restarts += 1
                log.exception("tftp: server loop failed; starting it again")
                with contextlib.suppress(OSError):
                    self._server.sock.close()
                self._server.sessions = _Sessions(self.files, self._quota)
                time.sleep(1)

    def start(self, timeout: float = 10.0) -> None:
        tftpy_log = logging.getLogger("tftpy")
        if tftpy_log.level == logging.NOTSET:
            # its INFO lines cost time on every packet; its per-session errors are
            # reported through the server's "Fatal exception" line (filtered below)
            tftpy_log.setLevel(logging.CRITICAL)
            logging.getLogger("tftpy.TftpServer").setLevel(logging.ERROR)
        logging.getLogger("tftpy.TftpServer").addFilter(self._filter)
        self._thread = threading.Thread(target=self._run, name="tftp", daemon=True)
        self._thread.start()
        if not self._server.is_running.wait(timeout) or self._error is not None:
            raise TftpError(
                f"TFTP server cannot listen on {self.address}:{self.port}: {self._error}"
            ) from self._error
        self.port = self._server.listenport
        log.info("tftp: serving %s on %s:%d", self.files.root, self.address, self.port)

    @property
    def sock(self) -> socket.socket | None:
        return self._server.sock

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._server.stop(now=True)
        self._filter.stopping = True
        self._server.sessions.quiet = True
        sock = self._server.sock
        if sock is not None:
            # tftpy looks at the stop flag only when select() returns: wake it
            host = "127.0.0.1" if self.address in ("", "0.0.0.0") else self.address
            with (
                contextlib.suppress(OSError),
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s,
            ):
                s.sendto(b"\0\0", (host, self.port))
        self._thread.join(timeout)
        self._thread = None
        logging.getLogger("tftpy.TftpServer").removeFilter(self._filter)
        self._empty.cleanup()
