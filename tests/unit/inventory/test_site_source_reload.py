"""SiteSource under concurrent readers and hostile edits (issues 14 and 18)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from provisioner.inventory.source import SiteSource

NEW_NODE = (
    '  - name: cmp4\n    role: compute\n    macs: ["52:54:00:00:02:15"]\n'
    "    ip: 192.0.2.21\n    bmc: {driver: ipmi, address: 127.0.0.1, port: 6240, "
    "user: admin, password: {file: secrets/bmc-password}}\n"
)


def test_no_reader_gets_the_old_site_while_another_reloads_it(site_dir: Path) -> None:
    """A gthread worker answers requests in parallel: the thread that notices an edit
    reloads it, and the others wait for that reload instead of answering from the site
    that was replaced (a new node was told it is unknown)."""
    path = site_dir / "site.yaml"
    source = SiteSource(path)
    for _round in range(3):
        text = path.read_text() + NEW_NODE.replace("cmp4", f"cmp{4 + _round}").replace(
            "02:15", f"02:{0x15 + _round:02x}"
        ).replace("192.0.2.21", f"192.0.2.{21 + _round}").replace("6240", str(6240 + _round))
        path.write_text(text)
        os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000_000))
        start = threading.Barrier(8)
        seen: list[int] = []

        def read(start: threading.Barrier = start, seen: list[int] = seen) -> None:
            start.wait()
            seen.append(len(source.current().nodes))

        threads = [threading.Thread(target=read) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert seen == [11 + _round] * 8


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: os.mkfifo(p), "cannot read: not a regular file"),
        (lambda p: p.write_text("site: " + "[" * 5000 + "]" * 5000), "nested deeper than 64"),
        (lambda p: p.write_bytes(b"\xff\xfe" + "site: {}".encode("utf-16-le")), "not UTF-8"),
        (
            lambda p: p.write_text(
                "a: &a [x, x]\n"
                + "".join(
                    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n"
                    for a, b in zip("abcdefgh", "bcdefghi", strict=True)
                )
            ),
            "through aliases",
        ),
    ],
    ids=["fifo", "deep", "utf-16", "billion-laughs"],
)
def test_a_hostile_file_in_place_of_the_site_is_refused_and_the_site_kept(
    site_dir: Path, caplog: pytest.LogCaptureFixture, make: object, says: str
) -> None:
    path = site_dir / "site.yaml"
    source = SiteSource(path)
    before = source.current()
    path.unlink()
    make(path)  # type: ignore[operator]
    with caplog.at_level(logging.ERROR, logger="provisioner.inventory.source"):
        assert source.current() is before  # at once: a FIFO is never opened for a read
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f"{path}") and says in m for m in messages), messages
    assert all("edit ignored, keeping the last good inventory" in m for m in messages)


def test_a_bad_value_is_logged_naming_node_and_field_warnings_as_warnings(
    site_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = site_dir / "site.yaml"
    source = SiteSource(path)
    path.write_text(path.read_text().replace("ip: 192.0.2.11\n", 'ip: "192.0.2.11\\nx"\n', 1))
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000_000))
    with caplog.at_level(logging.INFO, logger="provisioner.inventory.source"):
        assert source.current().node("ctl1").ip.exploded == "192.0.2.11"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    line = 1 + path.read_text().splitlines().index('    ip: "192.0.2.11\\nx"')
    assert (
        f"site {path}: line {line}: error: node ctl1: ip: Input is not a valid IPv4 address"
        in errors
    )
    assert all(": warning: " not in m for m in errors)
    assert any(
        ": warning: " in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
    )


def test_a_fifo_as_a_secret_file_is_refused_not_read(site_dir: Path) -> None:
    """validate (and every reload) checks the secrets: a FIFO there would block the read."""
    from provisioner.inventory.loader import validate_site_file

    secret = site_dir / "secrets" / "bmc-password"
    secret.unlink()
    os.mkfifo(secret)
    _site, problems = validate_site_file(site_dir / "site.yaml")
    found = {(p.where, p.field, p.message) for p in problems if p.where == "node ctl1"}
    assert (
        "node ctl1",
        "bmc.password",
        f"missing secret: secret file {secret} is not a regular file",
    ) in found


def test_a_snapshot_holds_the_same_site_and_no_secret(site_dir: Path, tmp_path: Path) -> None:
    from provisioner.inventory import load_site
    from provisioner.inventory.source import read_snapshot, write_snapshot

    site = load_site(site_dir / "site.yaml")
    snapshot = tmp_path / "site.last-good.json"
    write_snapshot(site, snapshot)
    assert snapshot.stat().st_mode & 0o777 == 0o600
    again = read_snapshot(snapshot, site_dir / "site.yaml")
    assert again.model_dump() == site.model_dump()
    assert again.base_dir == site.base_dir
    password = (site_dir / "secrets" / "bmc-password").read_text().strip()
    assert password not in snapshot.read_text()


def test_open_starts_from_the_snapshot_while_the_site_is_broken(
    site_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from provisioner.errors import InventoryInvalid
    from provisioner.inventory.source import write_snapshot

    path = site_dir / "site.yaml"
    snapshot = tmp_path / "site.last-good.json"
    write_snapshot(SiteSource(path).current(), snapshot)
    path.write_text(path.read_text() + NEW_NODE.replace("192.0.2.21", "192.0.2.11"))
    with pytest.raises(InventoryInvalid):
        SiteSource.open(path)  # no snapshot: as before, the start fails
    with caplog.at_level(logging.INFO, logger="provisioner.inventory.source"):
        source = SiteSource.open(path, snapshot)
    assert len(source.current().nodes) == 10
    messages = [r.getMessage() for r in caplog.records]
    assert any("node cmp4: ip: duplicate IP 192.0.2.11" in m for m in messages), messages
    assert any("starting with the last good inventory" in m for m in messages)
    path.write_text(
        path.read_text().replace(
            "ip: 192.0.2.11\n    bmc: {driver: ipmi, address: 127.0.0.1, port: 6240",
            "ip: 192.0.2.21\n    bmc: {driver: ipmi, address: 127.0.0.1, port: 6240",
        )
    )
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000_000))
    assert len(source.current().nodes) == 11  # the fixed file is followed as usual
