"""Every external program and file the project runs or reads, in one table.

Each entry says how the thing is found, which Debian package (or Python extra)
provides it and which uses need it: ``serve`` (the provisioning host: ``provisioner
serve`` and the operator commands), ``demo`` (``make demo``: the virtual lab),
``test`` (``make test``) and ``bench`` (``benchmarks/``). Code finds programs only
through this table (``path``, ``command``), so a missing one is always the same
error naming the package that fixes it; ``provisioner doctor`` and the Makefile's
package lists are made from the same table, so they cannot drift apart.

How an entry is found:

- ``program``: on ``PATH``, then in the system directories (``/usr/sbin`` and
  ``/sbin`` included, which a user's PATH often lacks);
- ``file``: at a fixed path (firmware, boot binaries, a static busybox);
- ``script``: a Python console script of the running interpreter's environment
  (beside ``sys.executable``), never whatever happens to be on PATH.

Standard library only: the Makefile runs ``python3 -m provisioner.programs
packages demo`` with the system Python before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from provisioner.errors import ProgramMissing

Kind = Literal["program", "file", "script"]

#: The uses, and what each one needs besides its own entries: the demo runs
#: ``provisioner serve``; the tests and the benchmarks run the demo's lab (or its
#: installer) too.
USES: dict[str, tuple[str, ...]] = {
    "serve": ("serve",),
    "demo": ("serve", "demo"),
    "test": ("serve", "demo", "test"),
    "bench": ("serve", "demo", "bench"),
}

#: Where programs are looked for after PATH (Debian's, sbin included).
#: Debian's own program directories (what the lab installer copies from).
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:" + DEBIAN_PATH

#: The Python extra that installs the console scripts the tests run.
TEST_EXTRA = "test"


class UnknownProgram(LookupError):
    """Code asked for a program the table does not name (a bug: add it to the table)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name}: not in the table of provisioner/programs.py; add it there "
            "(how it is found, its package, which uses need it)"
        )


@dataclass(frozen=True)
class Program:
    """One external program or file."""

    name: str
    package: str  # Debian package; for a script, the Python distribution
    uses: tuple[str, ...]
    why: str  # what needs it, for the error message and `doctor`
    kind: Kind = "program"
    #: program: other names it goes by (mysqld for mariadbd); file: where it is (globs allowed)
    alternatives: tuple[str, ...] = ()
    #: script: the Python extra of pyproject.toml that installs its distribution
    extra: str = TEST_EXTRA

    @property
    def fix(self) -> str:
        """The one command that installs it."""
        if self.kind == "script":
            return f"{sys.executable} -m pip install '.[{self.extra}]'"
        return f"apt-get install {self.package}"

    def search_dirs(self, search: str | None = None) -> list[str]:
        """Where a ``program`` or ``script`` is looked for, in order."""
        if self.kind == "script":
            dirs = [str(Path(sys.executable).parent), sysconfig.get_path("scripts")]
        else:
            given = search if search is not None else os.environ.get("PATH", "")
            dirs = given.split(os.pathsep) + (
                [] if search is not None else SYSTEM_PATH.split(os.pathsep)
            )
        return list(dict.fromkeys(d for d in dirs if d))

    def where(self, search: str | None = None) -> str:
        """Where it was looked for, as the error message says it."""
        if self.kind == "file":
            return " or ".join(self.alternatives)
        if self.kind == "script":
            return f"the environment of {sys.executable}"
        if search is None:
            return f"PATH and {SYSTEM_PATH}"
        return search

    def find(self, search: str | None = None) -> str | None:
        """Its path on this machine, or None."""
        if self.kind == "file":
            for pattern in self.alternatives:
                for match in sorted(glob.glob(pattern)):
                    if os.path.isfile(match):
                        return match
            return None
        dirs = os.pathsep.join(self.search_dirs(search))
        for name in (self.name, *self.alternatives):
            found = shutil.which(name, path=dirs)
            if found:
                return found
        return None

    def path(self, search: str | None = None) -> str:
        """Its path on this machine; raises ProgramMissing naming the package."""
        found = self.find(search)
        if found is None:
            raise ProgramMissing(self.name, self.where(search), self.why, self.fix)
        return found


def _p(name: str, package: str, uses: str, why: str, *alternatives: str) -> Program:
    return Program(name, package, tuple(uses.split()), why, "program", alternatives)


def _f(name: str, package: str, uses: str, why: str, *paths: str) -> Program:
    return Program(name, package, tuple(uses.split()), why, "file", paths)


def _s(name: str, distribution: str, why: str, extra: str = TEST_EXTRA) -> Program:
    return Program(name, distribution, ("test",), why, "script", extra=extra)


_IPXE = "/usr/lib/ipxe"
_LAB = "the lab installer image (copied in from the host)"

#: The table. One entry a line keeps merges simple; keep it sorted by area.
TABLE: tuple[Program, ...] = (
    # to run Python at all: the Makefile installs these before anything else (APT_BASE)
    _p("python3", "python3", "serve demo test bench", "the provisioner itself and its hooks"),
    _f("ensurepip", "python3-venv", "demo test bench", "make: the virtualenv (python3 -m venv)",
       "/usr/lib/python3*/ensurepip/__init__.py"),
    _p("pip3", "python3-pip", "demo test bench", "make: installing the package"),
    _p("make", "make", "demo test bench", "make demo / make test"),
    _p("dpkg-query", "dpkg", "demo test bench", "make: scripts/apt-install (what is installed)"),
    _p("grep", "grep", "demo test bench", "make: scripts/apt-install; kickstart %pre in tests"),
    # provisioner serve and the operator commands
    _p("dnsmasq", "dnsmasq-base", "serve", "DHCP and PXE answers of provisioner serve"),
    _f("undionly.kpxe", "ipxe", "serve", "TFTP boot of BIOS nodes", f"{_IPXE}/undionly.kpxe"),
    _f("ipxe.efi", "ipxe", "serve", "TFTP boot of UEFI nodes", f"{_IPXE}/ipxe.efi"),
    _f("snponly.efi", "ipxe", "serve", "TFTP boot of UEFI nodes (SNP)", f"{_IPXE}/snponly.efi"),
    _p("ssh", "openssh-client", "serve", "provisioner bundle --push (SSH push of bundles)"),
    _p("sh", "dash", "serve", "the post-install hooks (#!/bin/sh)"),
    _p("mkdir", "coreutils", "serve", "the post-install hooks (hooks/common)"),
    _p("cat", "coreutils", "serve", "the post-install hooks (hooks/common)"),
    _p("mv", "coreutils", "serve", "the post-install hooks (hooks/common)"),
    _p("mmdebstrap", "mmdebstrap", "serve", "provisioner image build: OS images"),
    _p("zstd", "zstd", "serve demo", f"image build: tar.zst images; {_LAB}: unpacking them"),
    _p("tar", "tar", "serve demo", f"image build (mmdebstrap); {_LAB}: GNU tar, xattrs kept"),
    # DNS: BIND for the lab and the tests
    _p("named", "bind9", "demo", "the lab's DNS server (lab up, dns lab --run)"),
    _p("dig", "bind9-dnsutils", "demo", "lab up and lab rebuild: DNS answers read back"),
    _p("openstack", "python3-openstackclient", "demo",
       "openstack token issue against the lab's VIP (Keystone behind HAProxy)"),
    _p("named-checkconf", "bind9-utils", "test", "tests: the generated BIND config checked"),
    _p("named-checkzone", "bind9-utils", "test", "tests: the generated zones checked"),
    _p("nsupdate", "bind9-dnsutils", "test", "tests: a foreign writer of the zone"),
    # the virtual lab: qemu nodes, firmware, network
    _p("qemu-system-x86_64", "qemu-system-x86", "demo bench", "the lab's virtual nodes"),
    _f("OVMF_CODE_4M.fd", "ovmf", "demo", "UEFI firmware of the lab's nodes",
       "/usr/share/OVMF/OVMF_CODE_4M.fd"),
    _f("OVMF_VARS_4M.fd", "ovmf", "demo", "UEFI variable store template of the lab's nodes",
       "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    _f("efi-virtio.rom", "ipxe-qemu", "demo", "the iPXE ROM of the lab's virtio NICs",
       f"{_IPXE}/qemu/efi-virtio.rom"),
    _p("ip", "iproute2", "demo", "the lab's network namespace, bridge and taps"),
    _p("env", "coreutils", "demo", "lab up: provisioner started inside the namespace"),
    _p("openssl", "openssl", "demo", "lab up: the lab's root password hash"),
    # the lab installer image: its kernel, busybox and the host tools copied in
    _p("apt-cache", "apt", "demo", "lab up: finding Debian's cloud kernel"),
    _p("apt-get", "apt", "demo", "lab up: downloading Debian's cloud kernel"),
    _p("dpkg-deb", "dpkg", "demo", "lab up: unpacking Debian's cloud kernel"),
    _p("depmod", "kmod", "demo", "lab up: the kernel's module dependencies"),
    _p("ldd", "libc-bin", "demo", "lab up: the libraries of the installer's programs"),
    _f("busybox", "busybox-static", "demo", f"{_LAB}: its shell and tools", "/bin/busybox"),
    _p("sfdisk", "fdisk", "demo", f"{_LAB}: partitioning"),
    _p("mkfs.vfat", "dosfstools", "demo", f"{_LAB}: EFI system partitions"),
    _p("mke2fs", "e2fsprogs", "demo", f"{_LAB}: ext4 filesystems"),
    _p("mkswap", "util-linux", "demo", f"{_LAB}: swap"),
    _p("lsblk", "util-linux", "demo", f"{_LAB}: disk discovery in %pre"),
    _p("mdadm", "mdadm", "demo", f"{_LAB}: software RAID"),
    _p("lvm", "lvm2", "demo", f"{_LAB}: LVM"),
    _p("curl", "curl", "demo bench", f"{_LAB}: kickstart and callbacks; tests and benchmarks"),
    _p("bash", "bash", "demo", f"{_LAB}: kickstart scripts; tests: %pre run for real"),
    _p("sort", "coreutils", "demo", f"{_LAB}: the kickstart snippets' sort"),
    # tests: the lab's disk images, initramfs and installer snippets checked
    _p("debugfs", "e2fsprogs", "test", "tests: files read from the lab's disk images"),
    _p("cpio", "cpio", "test", "tests: the initramfs unpacked"),
    _p("dash", "dash", "test", "tests: preseed commands parsed by Debian's sh"),
    _p("debconf-set-selections", "debconf", "test", "tests: the preseed files checked"),
    _p("ping", "iputils-ping", "test", "tests: the lab network answers"),
    _p("awk", "mawk", "test", "tests: kickstart %pre run for real (disk selection)"),
    _p("head", "coreutils", "test", "tests: kickstart %pre run for real (disk selection)"),
    _p("readlink", "coreutils", "test", "tests: kickstart %pre run for real (disk selection)"),
    _p("tr", "coreutils", "test", "tests: kickstart %pre run for real (callbacks)"),
    _p("timeout", "coreutils", "test", "tests: a DHCP client limited in time"),
    _p("truncate", "coreutils", "test bench", "tests and benchmarks: sparse disk images"),
    _p("true", "coreutils", "test", "tests: a process that exits at once"),
    _p("rm", "coreutils", "test", "tests: a Galera member's data wiped"),
    _p("chown", "coreutils", "test", "tests: a Galera member's data handed to mysql"),
    _p("tftp", "tftp-hpa", "test", "tests: a TFTP client of the boot server"),
    # tests: a real PostgreSQL for the shared state store (Debian keeps it off PATH)
    _f("initdb", "postgresql", "test bench", "tests: a PostgreSQL cluster for the state store",
       "/usr/lib/postgresql/*/bin/initdb"),
    _f("pg_ctl", "postgresql", "test bench", "tests: the test PostgreSQL started and stopped",
       "/usr/lib/postgresql/*/bin/pg_ctl"),
    _f("postgres", "postgresql", "test bench", "tests: the PostgreSQL server pg_ctl starts",
       "/usr/lib/postgresql/*/bin/postgres"),
    # tests: BMCs
    _p("ipmitool", "ipmitool", "test bench", "tests and benchmarks: the reference IPMI client"),
    _p("ipmi_sim", "openipmi", "test", "tests: OpenIPMI's simulated BMC"),
    _p("chromium", "chromium", "test", "tests: a real browser drives the web dashboard"),
    _p("chromedriver", "chromium-driver", "test", "tests: Selenium's driver of that browser"),
    # tests: the generated HA configuration, checked by the real programs
    _p("haproxy", "haproxy", "test", "tests: haproxy -c of the generated config"),
    _p("keepalived", "keepalived", "test", "tests: VRRP failover with the generated config"),
    _p("sysctl", "procps", "test", "tests: the generated VIP sysctl settings applied"),
    _p("git", "git", "test", "tests: what a fresh clone of the example site holds"),
    _p("corosync", "corosync", "test", "tests: corosync -t of the generated config"),
    _p("corosync-keygen", "corosync", "test", "tests: a corosync authkey"),
    _p("crm_verify", "pacemaker-cli-utils", "test", "tests: the generated CIB verified"),
    _f("swift.common.wsgi", "python3-swift", "test",
       "tests: the Swift servers' pipelines loaded by Swift's own loader",
       "/usr/lib/python3/dist-packages/swift/common/wsgi.py"),
    _f("keystonemiddleware", "python3-keystonemiddleware", "test",
       "tests: the Swift proxy's authtoken filter loaded by Swift's own loader",
       "/usr/lib/python3/dist-packages/keystonemiddleware/auth_token/__init__.py"),
    _p("apache2", "apache2-bin", "test", "tests: the WSGI APIs' Listen lines (apache2 -t)"),
    _f("mod_mpm_event.so", "apache2-bin", "test", "tests: the MPM apache2 -t needs loaded",
       "/usr/lib/apache2/modules/mod_mpm_event.so"),
    _p("swift-ring-builder", "swift", "test",
       "tests: Swift's rings built from the storage bundle's ring data"),
    _p("fence_redfish", "fence-agents", "test",
       "tests: the Redfish fence devices' attributes against the agent's metadata"),
    _p("fence_ipmilan", "fence-agents", "test",
       "tests: the IPMI fence devices' attributes against the agent's metadata"),
    _f("pacemakerd", "pacemaker", "test", "tests: the CIB's resource classes known to crm_verify",
       "/usr/sbin/pacemakerd"),
    _p("mariadbd", "mariadb-server", "test", "tests: the generated Galera config", "mysqld"),
    _p("mariadb-install-db", "mariadb-server", "test", "tests: a Galera member's empty datadir"),
    _p("mariadb", "mariadb-server", "test", "tests: Galera status queries"),
    _f("libgalera_smm.so", "galera-4", "test", "tests: the Galera provider of the config",
       "/usr/lib/galera/libgalera_smm.so"),
    _p("rsync", "rsync", "test", "tests: Galera's state transfer (wsrep_sst_rsync)"),
    _p("memcached", "memcached", "test", "tests: memcached with the generated options"),
    _p("sshd", "openssh-server", "test", "tests: the SSH push target"),
    _p("ssh-keygen", "openssh-client", "demo test", "lab up: the lab's SSH key; tests: push keys"),
    # tests: Python console scripts (pip install '.[test]'), from the running environment
    _s("ksvalidator", "pykickstart", "tests: generated kickstarts validated"),
    _s("ansible-inventory", "ansible-core", "tests: the generated Ansible inventory read"),
    _s("sushy-emulator", "sushy-tools", "tests: the Redfish BMC emulator"),
    _s("schemathesis", "schemathesis", "tests: the REST API fuzzed"),
    _s(
        "oslo-config-validator",
        "oslo.config",
        "tests: rendered OpenStack files checked against the projects' option definitions",
        extra="openstack",
    ),
    _s("pytest", "pytest", "make test: the test runner"),
    _s("ruff", "ruff", "make test: lint and format check"),
    _s("mypy", "mypy", "make test: type check"),
    # benchmarks: reference servers and clients
    _p("ipmipower", "freeipmi-tools", "bench", "benchmarks: FreeIPMI's power status fan-out"),
    _p("in.tftpd", "tftpd-hpa", "bench", "benchmarks: the reference TFTP server"),
    _p("nginx", "nginx", "bench", "benchmarks: the reference HTTP server"),
    _p("ab", "apache2-utils", "bench", "benchmarks: ApacheBench, latency percentiles"),
)  # fmt: skip


def _index(table: Iterable[Program]) -> dict[str, Program]:
    index: dict[str, Program] = {}
    for program in table:
        names = [program.name]
        if program.kind == "program":
            names += program.alternatives
        for name in names:
            if name in index:
                raise ValueError(f"programs table: {name} named twice")
            index[name] = program
    return index


_BY_NAME = _index(TABLE)


def entry(name: str) -> Program:
    """The table's entry for a program (by name, alternative name or a path to it)."""
    try:
        return _BY_NAME[os.path.basename(name)]
    except KeyError:
        raise UnknownProgram(name) from None


def known(name: str) -> bool:
    """The table names this program (a bare name or a path to it)."""
    return os.path.basename(name) in _BY_NAME


def find(name: str) -> str | None:
    """Its path here, or None (for optional uses; most code wants ``path``)."""
    return entry(name).find()


def location(name: str) -> str:
    """Where the table says a file is, without looking (for argv built ahead of time)."""
    program = entry(name)
    if program.kind != "file":
        raise ValueError(f"{name}: a {program.kind}, found by path(), not at a fixed location")
    return program.alternatives[0]


def path(name: str, search: str | None = None) -> str:
    """The path of a program or file of the table; raises ProgramMissing when absent.

    ``search`` replaces PATH and the system directories (a colon-separated list)."""
    return entry(name).path(search)


# -- argv ------------------------------------------------------------------------


def program_positions(argv: Sequence[str]) -> list[int]:
    """Where in ``argv`` the programs it runs are: argv[0], and what the wrappers we use
    run in turn (``ip netns exec NS PROG``, ``env [VAR=value] PROG``, ``timeout N PROG``)."""
    found: list[int] = []
    i = 0
    while i < len(argv):
        found.append(i)
        base = os.path.basename(argv[i])
        j = i + 1
        if base == "ip" and list(argv[j : j + 2]) == ["netns", "exec"]:
            j += 3  # netns exec NAME
        elif base == "env":
            while j < len(argv) and (argv[j].startswith("-") or "=" in argv[j]):
                j += 2 if argv[j] in ("-u", "--unset", "-C", "--chdir") else 1
        elif base == "timeout":
            while j < len(argv) and argv[j].startswith("-"):
                j += 2 if argv[j] in ("-s", "--signal", "-k", "--kill-after") else 1
            j += 1  # the duration
        else:
            break
        i = j
    return found


def programs_run(argv: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The programs an argv runs, as written (names or paths), wrappers unwrapped."""
    args = [os.fspath(a) for a in argv]
    return [args[i] for i in program_positions(args)]


def command(argv: Sequence[str | os.PathLike[str]]) -> list[str]:
    """``argv`` with every program it runs resolved through the table.

    A bare name becomes the path ``path`` finds (or ProgramMissing); a path (the
    running Python, a hook, a file the caller chose) is kept as it is."""
    args = [os.fspath(a) for a in argv]
    for i in program_positions(args):
        if "/" not in args[i]:
            args[i] = path(args[i])
    return args


# -- uses --------------------------------------------------------------------------


def needed(use: str, table: Sequence[Program] = TABLE) -> list[Program]:
    """The entries a use needs, in table order."""
    try:
        wanted = set(USES[use])
    except KeyError:
        raise ValueError(f"use {use!r}: not one of {', '.join(USES)}") from None
    return [p for p in table if wanted.intersection(p.uses)]


def packages(use: str, table: Sequence[Program] = TABLE) -> list[str]:
    """The Debian packages a use needs (sorted, each once): what the Makefile installs."""
    return sorted({p.package for p in needed(use, table) if p.kind != "script"})


def report(use: str, table: Sequence[Program] = TABLE) -> dict[str, Any]:
    """What is present and what is missing for a use, and the commands that fix it."""
    rows: list[dict[str, Any]] = []
    for program in needed(use, table):
        found = program.find()
        rows.append(
            {
                "name": program.name,
                "kind": program.kind,
                "package": program.package,
                "uses": list(program.uses),
                "why": program.why,
                "path": found,
                "fix": None if found else program.fix,
            }
        )
    missing = [r for r in rows if r["path"] is None]
    apt = sorted({str(r["package"]) for r in missing if r["kind"] != "script"})
    fix = [f"apt-get install {' '.join(apt)}"] if apt else []
    missing_names = {r["name"] for r in missing}
    extras = sorted({p.extra for p in table if p.kind == "script" and p.name in missing_names})
    if extras:
        fix.append(f"{sys.executable} -m pip install '.[{','.join(extras)}]'")
    return {
        "use": use,
        "ok": not missing,
        "programs": rows,
        "missing": [r["name"] for r in missing],
        "packages": packages(use, table),
        "fix": fix,
    }


def render_report(data: dict[str, Any]) -> str:
    """The doctor's text: one line per program or file, then the fix."""
    rows = data["programs"]
    width = max(len(r["name"]) for r in rows)
    lines = [f"what '{data['use']}' needs ({len(rows)} programs and files):"]
    for r in rows:
        if r["path"]:
            lines.append(f"  ok       {r['name']:<{width}}  {r['path']}")
        else:
            lines.append(f"  MISSING  {r['name']:<{width}}  {r['fix']}  ({r['why']})")
    if data["ok"]:
        lines.append(f"all {len(rows)} present")
    else:
        lines.append(f"{len(data['missing'])} of {len(rows)} missing; to fix:")
        lines += [f"  {command}" for command in data["fix"]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 -m provisioner.programs packages USE | doctor [USE] [--json]``."""
    parser = argparse.ArgumentParser(prog="python3 -m provisioner.programs")
    sub = parser.add_subparsers(dest="command", required=True)
    pkgs = sub.add_parser("packages", help="the Debian packages a use needs, on one line")
    pkgs.add_argument("use", choices=list(USES))
    doctor = sub.add_parser("doctor", help="what is present and what is missing for a use")
    doctor.add_argument("use", nargs="?", default="serve", choices=list(USES))
    doctor.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "packages":
        print(" ".join(packages(args.use)))
        return 0
    data = report(args.use)
    print(json.dumps(data, indent=2) if args.json else render_report(data))
    return 0 if data["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
