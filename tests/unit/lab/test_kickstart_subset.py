"""The lab installer's kickstart reading and partition planning, run by busybox sh.

The installer's own shell functions (installer_files/storage.sh) run here on
the host against a kickstart, with the disks described instead of probed:
what they plan is what sfdisk would be given inside the VM.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from provisioner import programs
from provisioner_lab.installer import FILES_DIR

HARNESS = """
set -u
KS={ks}; LOG={ks}/log; SYSROOT=/nonexistent
say() {{ echo "$*" >>"$LOG"; }}
fail() {{ echo "FAIL: $*"; exit 3; }}
. {storage}
block_devices() {{ echo loop0; echo {disks}; }}
disk_sectors() {{ echo $(({gib} * 2048 * 1024)); }}
has_table() {{ [ "$1" = "{with_table}" ]; }}
storage_read
plan_partitions
"""


def sfdisk_lines(path: Path) -> list[str]:
    """The sfdisk script without its random GUIDs (checked for shape only)."""
    lines = path.read_text().splitlines()
    assert re.fullmatch(r"label-id: [0-9a-f-]{36}", lines[1])
    assert all(re.search(r", uuid=[0-9a-f-]{36}$", line) for line in lines[2:])
    return [lines[0]] + [re.sub(r", uuid=.*$", "", line) for line in lines[2:]]


def plan(
    tmp_path: Path, commands: str, disks: str = "vda vdb", gib: int = 2, with_table: str = ""
) -> tuple[subprocess.CompletedProcess[str], Path]:
    ks = tmp_path / "ks"
    ks.mkdir(exist_ok=True)
    (ks / "commands").write_text(commands)
    (ks / "layout").write_text("")
    script = HARNESS.format(
        ks=ks, storage=FILES_DIR / "storage.sh", disks=disks, gib=gib, with_table=with_table
    )
    done = subprocess.run(
        [programs.path("busybox"), "sh", "-c", script], capture_output=True, text=True
    )
    return done, ks


CONTROLLER = """\
ignoredisk --only-use=vda,vdb
clearpart --all --initlabel
part biosboot --fstype=biosboot --size=1 --ondisk=vda
part /boot/efi --fstype="efi" --size=200 --ondisk=vda  # inline comment
part raid.11 --size=256 --ondisk=vda
part raid.12 --size=256 --ondisk=vdb
part raid.21 --size=1024 --grow --ondisk=vda
part raid.22 --size=1024 --grow --ondisk=vdb
part swap --size=128 --ondisk=vdb
rootpw --iscrypted $6$salt$hash`not-run`
"""


def test_parts_go_to_their_disks_with_anaconda_types_and_grow_takes_the_rest(
    tmp_path: Path,
) -> None:
    done, ks = plan(tmp_path, CONTROLLER, disks="vda vdb vdc")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sfdisk_lines(ks / "sfdisk.vda") == [
        "label: gpt",
        'size=1MiB, type=21686148-6449-6E6F-744E-656564454649, name="biosboot"',
        'size=200MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="/boot/efi"',
        'size=256MiB, type=A19D880F-05FC-4D3B-A006-743F0F84911E, name="raid.11"',
        'type=A19D880F-05FC-4D3B-A006-743F0F84911E, name="raid.21"',
    ]
    vdb = sfdisk_lines(ks / "sfdisk.vdb")
    # raid.22 grows but is not last on vdb: it gets an explicit size, swap keeps 128 MiB.
    assert vdb[2] == 'size=1662MiB, type=A19D880F-05FC-4D3B-A006-743F0F84911E, name="raid.22"'
    assert vdb[3] == 'size=128MiB, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name="swap"'
    assert not (ks / "sfdisk.vdc").exists()  # ignoredisk --only-use left it alone
    assert (ks / "devmap").read_text().splitlines()[:3] == [
        "biosboot /dev/vda1",
        "/boot/efi /dev/vda2",
        "raid.11 /dev/vda3",
    ]
    assert "/boot/efi /dev/vda2 efi -" in (ks / "fs").read_text()


def test_parts_without_ondisk_spread_raid_members_and_keep_others_on_the_first_disk(
    tmp_path: Path,
) -> None:
    done, ks = plan(
        tmp_path,
        "clearpart --all\npart raid.01 --size=100\npart raid.02 --size=100\npart / --size=500\n",
    )
    assert done.returncode == 0, done.stdout
    assert (ks / "parts.placed").read_text().split("\n")[:3] == [
        "vda raid.01 100 no - - -",
        "vdb raid.02 100 no - - -",
        "vda / 500 no - - -",
    ]


@pytest.mark.parametrize(
    ("commands", "message"),
    [
        ("clearpart --all\npart / --size=4096\n", "disk vda: the partitions need 4096 MiB"),
        ("clearpart --all\npart / --size=100 --ondisk=sdz\n", "--ondisk=sdz is not a usable disk"),
        ("clearpart --all\npart /var\n", "part /var: --size= is required"),
        ("clearpart --all\npart / --size 100\n", "write --size=VALUE"),
        ("part / --size=100\n", "disk vda has partitions and the kickstart does not clear it"),
        ("autopart\n", "autopart"),
        ("logvol / --vgname=vg --size=100\n", "logvol /: --name= is required"),
        ("ignoredisk --only-use=sdq\npart / --size=10\n", "no usable disk"),
    ],
)
def test_bad_storage_commands_fail_with_a_clear_reason(
    tmp_path: Path, commands: str, message: str
) -> None:
    done, _ = plan(tmp_path, commands, disks="vda", with_table="vda")
    assert done.returncode == 3
    assert message in done.stdout
