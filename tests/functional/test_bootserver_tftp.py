"""TFTP as firmware and operators see it: curl and tftp-hpa fetch the iPXE
binaries; traversal, absolute paths, symlinks out of the root and writes are
refused and logged."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.bootserver.tftp import DEBIAN_IPXE_DIR, TftpService, stage_ipxe_binaries

pytestmark = pytest.mark.functional


@pytest.fixture
def tftp_root(tmp_path: Path) -> Path:
    root = stage_ipxe_binaries(DEBIAN_IPXE_DIR, tmp_path / "tftp")
    (tmp_path / "secret.txt").write_text("not for nodes\n")
    (root / "escape.efi").symlink_to(tmp_path / "secret.txt")
    (root / "passwd").symlink_to("/etc/passwd")
    (root / "sub").mkdir()
    (root / "sub" / "inside.efi").symlink_to(root / "undionly.kpxe")  # stays inside: fine
    return root


@pytest.fixture
def tftp(tftp_root: Path) -> Iterator[TftpService]:
    service = TftpService(tftp_root, "127.0.0.1", 0, who=lambda ip: "lab1")
    service.start()
    try:
        yield service
    finally:
        service.stop()


def curl(url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "20", *args, url],
        capture_output=True,
        timeout=60,
    )


def test_debian_binaries_are_staged_as_plain_files(tftp_root: Path) -> None:
    for name in ("undionly.kpxe", "ipxe.efi", "snponly.efi"):
        staged = tftp_root / name
        assert staged.is_file() and not staged.is_symlink()
        assert staged.read_bytes() == (DEBIAN_IPXE_DIR / name).read_bytes()


@pytest.mark.parametrize("name", ["undionly.kpxe", "ipxe.efi", "snponly.efi"])
@pytest.mark.parametrize("blksize", [None, "1428", "8192"])
def test_curl_fetches_ipxe_binaries(
    tftp: TftpService, tftp_root: Path, name: str, blksize: str | None
) -> None:
    args = ["--tftp-blksize", blksize] if blksize else ["--tftp-no-options"]
    done = curl(f"tftp://127.0.0.1:{tftp.port}/{name}", *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (tftp_root / name).read_bytes()


def test_tftp_hpa_fetches_with_blksize_and_tsize(
    tftp: TftpService, tftp_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "got.efi"
    done = subprocess.run(
        [
            "tftp",
            "-v",
            "-m",
            "binary",
            "127.0.0.1",
            str(tftp.port),
            "-c",
            "get",
            "ipxe.efi",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_bytes() == (tftp_root / "ipxe.efi").read_bytes()
    # tftp-hpa with options: blksize 1468 and tsize are negotiated
    out2 = tmp_path / "got2.kpxe"
    done = subprocess.run(
        ["tftp", "127.0.0.1", str(tftp.port)],
        input=f"binary\nblksize 1468\ntsize\nget undionly.kpxe {out2}\nquit\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out2.read_bytes() == (tftp_root / "undionly.kpxe").read_bytes(), done.stdout


def test_symlink_inside_the_root_is_served(tftp: TftpService, tftp_root: Path) -> None:
    done = curl(f"tftp://127.0.0.1:{tftp.port}/sub/inside.efi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (tftp_root / "undionly.kpxe").read_bytes()


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../secret.txt", "'..' in path"),
        ("../../../../etc/passwd", "'..' in path"),
        ("sub/../undionly.kpxe", "'..' in path"),
        ("/etc/passwd", "absolute path"),
        ("escape.efi", "leads outside the TFTP root"),
        ("passwd", "leads outside the TFTP root"),
        ("sub", "not a regular file"),
        ("nothere.efi", "no such file"),
    ],
)
def test_refusals_are_refused_and_logged(
    tftp: TftpService, path: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="provisioner.bootserver.tftp")
    done = curl(f"tftp://127.0.0.1:{tftp.port}/{path}", "--path-as-is")
    # a TFTP error reply (curl 68: not found, 69: access violation), not a timeout
    assert done.returncode in (68, 69), done.stderr
    assert b"not for nodes" not in done.stdout and b"root:" not in done.stdout
    # the line is logged before the reply is sent: it is there when curl returns, once
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and why in refusals[0] and "node lab1" in refusals[0], refusals


def test_write_request_is_refused_and_nothing_changes(
    tftp: TftpService, tftp_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="provisioner.bootserver.tftp")
    before = (tftp_root / "undionly.kpxe").read_bytes()
    upload = tmp_path / "evil.kpxe"
    upload.write_bytes(b"evil" * 1000)
    for name in ("undionly.kpxe", "new.efi"):
        done = curl(f"tftp://127.0.0.1:{tftp.port}/{name}", "-T", str(upload))
        assert done.returncode != 0
    assert (tftp_root / "undionly.kpxe").read_bytes() == before
    assert not (tftp_root / "new.efi").exists()
    assert sum("write request" in r.getMessage() for r in caplog.records) == 2


def test_server_keeps_serving_after_garbage(tftp: TftpService, tftp_root: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for junk in (b"", b"\x00", b"\x00\x09garbage", b"\x00\x01no-terminator"):
            s.sendto(junk, ("127.0.0.1", tftp.port))
    done = curl(f"tftp://127.0.0.1:{tftp.port}/undionly.kpxe")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (tftp_root / "undionly.kpxe").read_bytes()
