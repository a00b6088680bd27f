"""Shared by the kickstart tests: render the example site, run ksvalidator, read sections."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

from pykickstart.constants import KS_SCRIPT_ONERROR, KS_SCRIPT_POST, KS_SCRIPT_PRE
from pykickstart.parser import KickstartParser
from pykickstart.version import makeVersion, stringToVersion

from provisioner import programs
from provisioner.install.kickstart import STORAGE_INCLUDE

BASE_URL = "http://192.0.2.2:8080"
# RHEL 9 as the issue asks; Fedora: the newest release pykickstart knows as stable
VERSIONS = ("RHEL9", "F43")
SAMPLE_DISKS = ["sda", "sdb", "sdc", "sdd", "sde", "sdf"]
_HEREDOC = re.compile(
    rf"cat > {re.escape(STORAGE_INCLUDE)} <<PROVISIONER_STORAGE\n(.*?)\nPROVISIONER_STORAGE\n",
    re.S,
)


def ksvalidator(paths: Iterable[Path], version: str) -> subprocess.CompletedProcess[str]:
    """ksvalidator on files; exit 0 means no error and no warning."""
    return subprocess.run(
        [programs.path("ksvalidator"), "-v", version, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def storage_heredoc(ks_text: str) -> str:
    """The storage commands %pre writes to the include file (with ${DISK_n} in them)."""
    m = _HEREDOC.search(ks_text)
    assert m, "no storage heredoc in %pre"
    return m.group(1)


def with_disks(storage: str, disks: list[str]) -> str:
    """What the shell makes of the heredoc once DISK_0.. are set."""
    return re.sub(r"\$\{DISK_(\d+)\}", lambda m: disks[int(m.group(1))], storage)


def expanded(ks_text: str, disks: list[str]) -> str:
    """The kickstart as anaconda sees it after %pre: the include replaced by its content."""
    body = with_disks(storage_heredoc(ks_text), disks)
    return ks_text.replace(f"%include {STORAGE_INCLUDE}\n", body + "\n")


def parse(ks_text: str, version: str = "RHEL9") -> object:
    handler = makeVersion(stringToVersion(version))
    parser = KickstartParser(handler, errorsAreFatal=True, followIncludes=False)
    parser.readKickstartFromString(ks_text)
    return handler


def scripts(ks_text: str) -> dict[str, list[str]]:
    handler = parse(ks_text)
    kinds = {KS_SCRIPT_PRE: "pre", KS_SCRIPT_POST: "post", KS_SCRIPT_ONERROR: "onerror"}
    out: dict[str, list[str]] = {"pre": [], "post": [], "onerror": []}
    for script in handler.scripts:  # type: ignore[attr-defined]
        out[kinds[script.type]].append(script.script)
    return out


def storage_problems(ks_text: str) -> list[str]:
    """What pykickstart does not check: references between storage commands."""
    h = parse(ks_text)
    problems: list[str] = []
    only_use = set(h.ignoredisk.onlyuse)  # type: ignore[attr-defined]
    parts = {p.mountpoint: p for p in h.partition.partitions}  # type: ignore[attr-defined]
    raids = {r.mountpoint: r for r in h.raid.raidList}  # type: ignore[attr-defined]
    vgs = {v.vgname: v for v in h.volgroup.vgList}  # type: ignore[attr-defined]
    lvs = h.logvol.lvList  # type: ignore[attr-defined]
    for p in parts.values():
        if p.disk not in only_use:
            problems.append(f"part {p.mountpoint} on {p.disk}, not in ignoredisk --only-use")
    used: set[str] = set()
    for r in raids.values():
        disks = []
        for member in r.members:
            if member not in parts:
                problems.append(f"raid {r.mountpoint}: member {member} is not a partition")
            elif member in used:
                problems.append(f"raid {r.mountpoint}: member {member} used twice")
            else:
                disks.append(parts[member].disk)
            used.add(member)
        if len(set(disks)) < 2:
            problems.append(f"raid {r.mountpoint}: fewer than two disks")
    for vg in vgs.values():
        for pv in vg.physvols:
            if pv not in parts and pv not in raids:
                problems.append(f"volgroup {vg.vgname}: physical volume {pv} does not exist")
    for lv in lvs:
        if lv.vgname not in vgs:
            problems.append(f"logvol {lv.mountpoint}: volume group {lv.vgname} does not exist")
    mounts = [m for m in (*parts, *raids, *(lv.mountpoint for lv in lvs)) if m.startswith("/")]
    for needed in ("/", "/boot"):
        if mounts.count(needed) != 1:
            problems.append(f"{mounts.count(needed)} file systems on {needed}")
    if len(mounts) != len(set(mounts)):
        problems.append(f"a mount point is used twice: {sorted(mounts)}")
    return problems


KNOWN_TYPES = {"select", "boolean", "string", "multiselect", "note", "password", "text", "title"}


def parse_preseed(text: str) -> dict[str, tuple[str, str]]:
    """question -> (type, value), joining backslash continuations as debconf does."""
    answers: dict[str, tuple[str, str]] = {}
    lines = iter(text.splitlines())
    for line in lines:
        while line.endswith("\\"):
            line = line[:-1] + next(lines)
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.match(r"^\s*(\S+)\s+(\S+)\s+(\S+)(?:\s(.*))?$", line)
        assert m, f"malformed line: {line!r}"
        owner, question, kind, value = m.groups()
        assert owner in ("d-i", "tasksel", "popularity-contest"), line
        assert kind in KNOWN_TYPES, line
        assert question not in answers, f"{question} answered twice"
        answers[question] = (kind, value or "")
    return answers
