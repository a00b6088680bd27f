"""The lab's long-running processes: started detached, recorded by pid, stopped by pid.

``lab up`` returns while BIND, ``provisioner serve`` and the virtual BMCs keep
running; ``lab down`` (another process) stops exactly those, found by the pids
recorded in ``lab.json`` and checked against their command line, never by name.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from provisioner import programs
from provisioner.errors import ProvisionerError

log = logging.getLogger(__name__)


class LabProcessError(ProvisionerError):
    """A lab process did not start or stop as it should."""


@dataclass(frozen=True)
class ProcRecord:
    name: str  # "bind", "serve", "vbmc"
    pid: int
    marker: str  # a string its /proc/<pid>/cmdline contains (guards against pid reuse)
    log: str


@dataclass
class LabRecord:
    """What ``lab up`` started: written to ``lab.json`` in the lab's state dir."""

    mode: str
    namespace: str
    reason: str
    nodes: list[str] = field(default_factory=list)
    procs: list[ProcRecord] = field(default_factory=list)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".partial")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LabRecord | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        procs = [ProcRecord(**p) for p in data.pop("procs", [])]
        return cls(**data, procs=procs)


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def alive(rec: ProcRecord) -> bool:
    """The recorded process still runs (and is the same program, not a reused pid).

    An empty command line is read while the process is between ``ip netns exec``,
    ``env`` and its program (execve in progress): that is still our process."""
    try:
        state = Path(f"/proc/{rec.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":
        return False
    text = cmdline(rec.pid)
    return not text or rec.marker in text


def start_detached(name: str, argv: list[str], log_path: Path, marker: str) -> ProcRecord:
    """Start ``argv`` in its own session with output to ``log_path``; returns its record."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        try:
            proc = subprocess.Popen(
                programs.command(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise LabProcessError(f"lab: cannot start {name} ({argv[0]}): {exc}") from exc
    log.info("lab: %s started, pid %d, log %s", name, proc.pid, log_path)
    return ProcRecord(name, proc.pid, marker, str(log_path))


def wait_for(rec: ProcRecord, ready: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``ready`` until true; fail early when the process died.

    The error names the cause (the log's error line) first and the log's path;
    the log's tail goes to our own log file, not into the message: a screen of
    the process's INFO lines used to bury the one line that mattered."""
    deadline = time.monotonic() + timeout
    while not ready():
        if not alive(rec):
            _fail(rec, f"exited before {what}")
        if time.monotonic() > deadline:
            _fail(rec, f"no {what} within {timeout:g}s")
        time.sleep(0.5)


def _fail(rec: ProcRecord, how: str) -> None:
    log.info("lab: %s %s; the end of %s:\n%s", rec.name, how, rec.log, log_tail(rec.log))
    raise LabProcessError(f"lab: {rec.name} {how}: {log_cause(rec.log)} (its log: {rec.log})")


#: Lines that state a failure, in the logs of serve, the BMCs (our CLI) and named.
_CAUSE = re.compile(r"\b(error|fatal|failed|cannot|could not|denied|not found|missing)\b", re.I)
#: named's closing line after the real one; says nothing about the cause.
_NOT_A_CAUSE = re.compile(r"exiting \(due to fatal error\)")


def log_cause(path: str) -> str:
    """The line of a dead process's log that says why: its last error line, else its last line."""
    try:
        lines = [ln.strip() for ln in Path(path).read_text(errors="replace").splitlines()]
    except OSError:
        return "(no log)"
    lines = [ln for ln in lines if ln]
    if not lines:
        return "(its log is empty)"
    for line in reversed(lines):
        if _CAUSE.search(line) and not _NOT_A_CAUSE.search(line):
            return line.removeprefix("error: ")
    return lines[-1]


def log_has(path: str, text: str) -> bool:
    try:
        return text in Path(path).read_text(errors="replace")
    except OSError:
        return False


def log_tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(rec: ProcRecord, timeout: float = 40.0) -> bool:
    """SIGTERM the recorded process, then SIGKILL its session if it lingers."""
    if not alive(rec):
        return False
    log.info("lab: stopping %s (pid %d)", rec.name, rec.pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(rec.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(rec) and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive(rec):
        log.warning("lab: %s (pid %d) ignored SIGTERM; killing its session", rec.name, rec.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(rec.pid, signal.SIGKILL)
    return True
