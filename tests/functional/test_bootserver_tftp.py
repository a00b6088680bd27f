"""TFTP as firmware and operators see it: curl and tftp-hpa fetch the iPXE
binaries; traversal, absolute paths, symlinks out of the root and writes are
refused and logged."""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import subprocess
import threading
import time
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
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for junk in (b"", b"\x00", b"\x00\x09garbage", b"\x00\x01no-terminator"):
            s.sendto(junk, ("127.0.0.1", tftp.port))
    done = curl(f"tftp://127.0.0.1:{tftp.port}/undionly.kpxe")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (tftp_root / "undionly.kpxe").read_bytes()
    assert tftp.restarts == 0


# --- hostile datagrams (issue 18) ---------------------------------------------------

#: The first requests of issue 18 and their relatives: each must get a TFTP error back.
HOSTILE_REQUESTS = [
    b"\x00\x01\xc0\xae\xc0\xae/x\x00octet\x00",  # non-ASCII name: tftpy's decode raised
    b"\x00\x01undionly\x00.kpxe\x00octet\x00",  # NUL inside the name: no reply before
    b"\x00\x01undionly.kpxe\x00octet\x00blksize\x00abc\x00",  # int() raised
    b"\x00\x01undionly.kpxe\x00octet\x00blksize\x00" + b"9" * 40 + b"\x00",
    b"\x00\x01undionly.kpxe\x00octet\x00tsize\x00",  # option without a value
    b"\x00\x01undionly.kpxe\x00octet",  # no terminator
    b"\x00\x01undionly.kpxe\x00mail\x00",
    b"\x00\x01undionly.kpxe\x00\xffctet\x00",
    b"\x00\x01" + b"a" * 2000 + b"\x00octet\x00",  # oversized
    b"\x00\x03\x00\x01data to nobody",
    b"\x00\x04\x00\x01",
    b"\x00\x09whatever\x00",  # unknown opcode
]


def _reply(sock: socket.socket) -> bytes | None:
    try:
        return sock.recvfrom(70000)[0]
    except TimeoutError:
        return None


@pytest.mark.parametrize("datagram", HOSTILE_REQUESTS, ids=range(len(HOSTILE_REQUESTS)))
def test_malformed_request_is_answered_with_a_tftp_error(
    tftp: TftpService, tftp_root: Path, datagram: bytes
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(datagram, ("127.0.0.1", tftp.port))
        answer = _reply(s)
    assert answer is not None and answer[:2] == b"\x00\x05", answer  # a TFTP ERROR packet
    done = curl(f"tftp://127.0.0.1:{tftp.port}/undionly.kpxe")
    assert done.returncode == 0 and done.stdout == (tftp_root / "undionly.kpxe").read_bytes()
    assert tftp.restarts == 0


def _hostile(rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.choice(HOSTILE_REQUESTS)
    if kind == 1:
        return rng.randbytes(rng.randrange(0, 600))
    if kind == 2:  # a request with random bytes in its name and options
        return b"\x00\x01" + rng.randbytes(rng.randrange(1, 40)) + b"\x00octet\x00"
    if kind == 3:
        opts = b"".join(rng.randbytes(rng.randrange(0, 8)) + b"\x00" for _ in range(5))
        return b"\x00\x01undionly.kpxe\x00octet\x00" + opts
    if kind == 4:  # truncated real request
        whole = b"\x00\x01undionly.kpxe\x00octet\x00blksize\x001428\x00"
        return whole[: rng.randrange(0, len(whole))]
    return rng.randrange(0, 65536).to_bytes(2, "big") + rng.randbytes(rng.randrange(0, 64))


def _flood(tftp: TftpService, until: float, sent: list[int]) -> None:  # sent: [all, to sessions]
    """Random datagrams at the server's port and at every running transfer's port."""
    rng = random.Random(18)
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(8)]
    try:
        while time.monotonic() < until:
            s = rng.choice(socks)
            s.sendto(_hostile(rng), ("127.0.0.1", tftp.port))
            sent[0] += 1
            # what a port scan finds: the sockets of transfers in progress
            for context in list(tftp._server.sessions.values()):
                with contextlib.suppress(OSError):
                    port = context.sock.getsockname()[1]
                    junk = rng.choice(
                        [b"\x00\x05\x00\x00stop\x00", b"\x00\x04\x00\x01", _hostile(rng)]
                    )
                    s.sendto(junk, ("127.0.0.1", port))
                    sent[0] += 1
                    sent[1] += 1
            time.sleep(0.002)
            for s in socks:  # drain error replies
                s.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    while s.recv(70000):
                        pass
    finally:
        for s in socks:
            s.close()


def test_flood_of_hostile_datagrams_leaves_real_transfers_intact(
    tftp: TftpService, tftp_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="provisioner.bootserver.tftp")
    sent = [0, 0]
    until = time.monotonic() + 10
    flood = threading.Thread(target=_flood, args=(tftp, until, sent), daemon=True)
    flood.start()
    fetched = 0
    while time.monotonic() < until:
        for name in ("undionly.kpxe", "ipxe.efi"):
            done = curl(f"tftp://127.0.0.1:{tftp.port}/{name}", "--tftp-blksize", "1428")
            assert done.returncode == 0, done.stderr
            assert done.stdout == (tftp_root / name).read_bytes(), name
            out = tmp_path / name
            got = subprocess.run(
                ["tftp", "-m", "binary", "127.0.0.1", str(tftp.port), "-c", "get", name, str(out)],
                capture_output=True,
                timeout=60,
            )
            assert got.returncode == 0 and b"Error" not in got.stderr, got.stderr
            assert out.read_bytes() == (tftp_root / name).read_bytes(), name
            out.unlink()
            fetched += 2
    flood.join(15)
    # the flood really happened while the clients fetched, also into their transfers
    assert sent[0] >= 2000 and sent[1] >= 100, sent
    assert fetched >= 8
    assert tftp.restarts == 0
    assert not any("server loop failed" in r.getMessage() for r in caplog.records)
    assert tftp._server.sessions.malformed > 1000
