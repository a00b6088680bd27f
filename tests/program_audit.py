"""A pytest plugin: the run fails when a test starts a program the table does not name.

An audit hook (``sys.addaudithook``) sees every ``subprocess.Popen``, ``os.exec*``,
``os.posix_spawn`` and ``os.system`` of the test process, with the programs that
wrappers run in turn (``ip netns exec NS PROG``, ``env``, ``timeout``). At the end
of the session any program missing from provisioner/programs.py is listed and the
exit status becomes non-zero, so the table (and with it ``provisioner doctor`` and
the Makefile's package lists) stays complete.

Not counted: the Python interpreter itself, and files the project or a test made
(hooks, fake scripts in temporary folders) - they are not packages to install.
Processes started by the processes we start (``provisioner serve`` starting dnsmasq)
are not seen here; the product code finds its programs through the table anyway.

Loaded by tests/conftest.py, or with ``-p tests.program_audit``.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from provisioner import programs

REPO = Path(__file__).resolve().parents[1]
_EVENTS = frozenset({"subprocess.Popen", "os.exec", "os.posix_spawn", "os.system"})


class ProgramRecorder:
    """Collects the programs started, each with the first test that started it."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}
        self._python = {sys.executable, os.path.realpath(sys.executable)}
        self._scripts = str(Path(sys.executable).parent)
        self._made_here = (str(REPO), os.path.realpath(tempfile.gettempdir()))

    def name_of(self, program: str) -> str | None:
        """The table name to check for ``program`` (a name or a path), or None to skip it."""
        if "/" not in program:
            return program
        if program in self._python or os.path.realpath(program) in self._python:
            return None
        parent = os.path.dirname(program)
        if parent != self._scripts and os.path.realpath(parent).startswith(self._made_here):
            return None  # a hook, a fake script: made by the project or a test
        name = os.path.basename(program)
        return None if name == "provisioner" and parent == self._scripts else name

    def record(self, argv: Sequence[Any], executable: Any = None) -> None:
        try:
            args = [os.fsdecode(a) for a in argv]
        except TypeError:
            return
        if executable is not None and args:
            args[0] = os.fsdecode(executable)
        where = os.environ.get("PYTEST_CURRENT_TEST", "(outside a test)").split(" ")[0]
        for program in programs.programs_run(args):
            name = self.name_of(program)
            if name is not None:
                self.seen.setdefault(name, where)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if event not in _EVENTS:  # keep the hook cheap: it sees every audited event
            return
        try:
            if event == "subprocess.Popen":
                self.record(args[1], args[0])
            elif event == "os.system":
                self.record(shlex.split(os.fsdecode(args[0]))[:1])
            else:  # os.exec, os.posix_spawn: (path, argv, env)
                self.record(args[1], args[0])
        except Exception:  # an audit hook must never break the code it watches
            return

    def unknown(self) -> dict[str, str]:
        return {name: test for name, test in self.seen.items() if not programs.known(name)}


RECORDER = ProgramRecorder()
_installed: list[bool] = []
_unknown: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    if not _installed:  # audit hooks cannot be removed: one per process
        sys.addaudithook(RECORDER)
        _installed.append(True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _unknown.clear()
    _unknown.update(RECORDER.unknown())
    if _unknown and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _unknown:
        return
    terminalreporter.section("programs missing from provisioner/programs.py", red=True)
    for name, test in sorted(_unknown.items()):
        terminalreporter.line(f"{name}: started by {test}")
    terminalreporter.line(
        "add each to the table (how it is found, its Debian package, which uses need it)"
    )
