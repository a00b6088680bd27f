"""Hostile site.yaml values against the HA bundles (issue 18).

For every site.yaml field that reaches a bundle file (node names and addresses,
the controllers' VIP, the network, the site's name and domain, the BMCs the
fence devices talk to, the VRRP interface, the OS family), Hypothesis mixes
valid values with hostile pieces (line breaks of every kind, NUL, quotes,
``]``/``[`` of INI sections, XML markup, shell syntax, YAML/JSON types that are
not strings). For each value, either:

* ``validate`` refuses it: every error names a section or node and a field,
  on one line; or
* the bundle of every node of the site is rendered, and each file reads as its
  format (INI with configparser ``strict=True``, the Pacemaker CIB with an XML
  parser, scripts with ``bash -n``, HAProxy with ``haproxy -c``, JSON, the
  brace-block formats of keepalived and corosync, RabbitMQ's ``key = value``)
  and has exactly the lines of a clean render: the same number, each starting
  with the same keyword (node names aside), the same INI sections and keys, the
  same XML elements and attributes. A value can change what a line says, never
  add a line, a section, a key or an element.

Bounded: a few dozen examples a field, programs run once per distinct text.
"""

from __future__ import annotations

import ast
import configparser
import copy
import json
import os
import re
import secrets
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner import programs
from provisioner.errors import RoleConfigError
from provisioner.inventory import Site
from provisioner.inventory.loader import parse_site
from provisioner.inventory.yamlload import load_yaml_file
from provisioner.roles import DeployFacts, generate
from provisioner.roles.kolla import multinode_inventory
from tests.conftest import EXAMPLE_SITE, REPO
from tests.example_secrets import seed_example_secrets
from tests.functional.roles.conftest import run
from tests.functional.roles.test_role_configs_real_programs import _as_running_cluster

pytestmark = pytest.mark.functional

HOSTILE = [
    "\n",
    "\r",
    "\r\n",
    "\x00",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x85",
    "\u2028",
    "\u2029",
    "\t",
    " ",
    '"',
    "'",
    "`",
    "\\",
    "#",
    ";",
    "=",
    ":",
    "{",
    "}",
    "[",
    "]",
    "\n[DEFAULT]\n",
    "\nadmin_password = x\n",
    "<",
    ">",
    "&",
    "-->",
    '"/><nvpair name="x" value="',
    "$(reboot)",
    "${IFS}",
    "\nserver evil 203.0.113.66:80\n",
    "\n}\nvrrp_script x {\n",
    "{{ 7*7 }}",
    "..",
    "/",
    "é",
]


def hostile(valid: list[Any]) -> st.SearchStrategy[Any]:
    """A valid value, one with hostile pieces before, after or instead of it, or a YAML
    value of another type."""
    piece = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=3))
    texts = [str(v) for v in valid if v is not None]
    spoilt = st.tuples(
        st.sampled_from(texts),
        st.lists(piece, min_size=1, max_size=3).map("".join),
        st.sampled_from(["before", "after", "instead"]),
    ).map(lambda t: {"before": t[1] + t[0], "after": t[0] + t[1], "instead": t[1]}[t[2]])
    other_types = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**33), max_value=2**33),
        st.lists(st.sampled_from(texts), max_size=2),
        st.dictionaries(st.sampled_from(["a", "name"]), st.sampled_from(texts), max_size=1),
    )
    return st.one_of(st.sampled_from(valid), spoilt, other_types)


# name -> (path in site.yaml, values to try, the fields an error may name)
FIELDS: dict[str, tuple[tuple[str | int, ...], st.SearchStrategy[Any], str]] = {
    "site.name": (("site", "name"), hostile(["example", "prod-1"]), r"name"),
    "site.domain": (
        ("site", "domain"),
        hostile(["lab.example.test", "example.org."]),
        r"domain|forward_zone",
    ),
    "node.name": (("nodes", 0, "name"), hostile(["ctl1", "ctl0", "zz-9"]), r"name"),
    "node.ip": (
        ("nodes", 0, "ip"),
        hostile(["192.0.2.11", "192.0.2.31"]),
        r"ip|ha\.vips\[0\]\.address",
    ),
    "node.bmc.user": (
        ("nodes", 0, "bmc", "user"),
        hostile(["admin", "ops.user@bmc"]),
        r"bmc\.user",
    ),
    "node.bmc.address": (
        ("nodes", 0, "bmc", "address"),
        hostile(["127.0.0.1", "bmc-ctl1.example.test", "https://bmc1:8443/", "[::1]"]),
        r"bmc\.address",
    ),
    "node.bmc.port": (
        ("nodes", 0, "bmc", "port"),
        hostile([6230, 623, 65535]),
        r"bmc\.port|bmc\.address",
    ),
    "node.network.interface": (
        ("nodes", 0, "network", "interface"),
        hostile(["enp1s0", "eth0.12", "br-mgmt"]),
        r"network\.interface",
    ),
    "node.network.vlan": (("nodes", 0, "network", "vlan"), hostile([12, 4094]), r"network\.vlan"),
    "vip.address": (
        ("roles", "controller", "ha", "vips", 0, "address"),
        hostile(["192.0.2.10", "192.0.2.40"]),
        r"ha\.vips\[0\]\.address",
    ),
    "vip.name": (
        ("roles", "controller", "ha", "vips", 0, "name"),
        hostile(["api", "vip-1"]),
        r".*",
    ),
    "network.cidr": (("network", "cidr"), hostile(["192.0.2.0/24", "192.0.0.0/16"]), r".+"),
    "profile.os_family": (
        ("profiles", "rocky9", "os_family"),
        hostile(["rhel", "debian"]),
        r"os_family",
    ),
    "node.network.bond": (
        ("nodes", 0, "network", "bond"),
        st.builds(
            lambda name, members, mode: {"name": name, "interfaces": members, "mode": mode},
            hostile(["bond0", "bond1"]),
            st.lists(hostile(["eno1", "eno2"]), min_size=2, max_size=2),
            hostile(["802.3ad", "active-backup"]),
        ),
        r"network\.bond\..+",
    ),
    "storage.node.name": (("nodes", 5, "name"), hostile(["sto1", "sto0", "s-9"]), r"name"),
    "network.node.ip": (("nodes", 3, "ip"), hostile(["192.0.2.14", "192.0.2.99"]), r"ip"),
    "compute.node.bmc.address": (
        ("nodes", 7, "bmc", "address"),
        hostile(["127.0.0.1", "http://[::1]:8000"]),
        r"bmc\.address",
    ),
    "storage.disks.count": (("nodes", 5, "disks", "count"), hostile([4, 1, 12]), r"disks\.count"),
}

FAST = settings(
    max_examples=30,
    deadline=None,
    database=None,  # nothing written into the checkout (conftest puts the home in tmp)
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def site_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile-bundles")
    shutil.copy(EXAMPLE_SITE, folder / "site.yaml")
    shutil.copytree(REPO / "examples" / "secrets", folder / "secrets")
    seed_example_secrets(folder / "secrets")
    return folder


@pytest.fixture(scope="module")
def raw(site_copy: Path) -> Any:
    return load_yaml_file(site_copy / "site.yaml")


def _set(data: Any, path: tuple[str | int, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def bundles(site: Site) -> dict[tuple[int, str], str]:
    """Every node's bundle files, keyed by (node position, path), and the kolla inventory."""
    files: dict[tuple[int, str], str] = {(-1, "kolla/multinode"): multinode_inventory(site)}
    for i, node in enumerate(site.nodes):
        for rel, text in generate(site, node.name, DeployFacts()).items():
            files[(i, rel)] = text
    return files


# -- what each format must look like -------------------------------------------------


class Checker:
    """Shape of a rendered file, by format, and the real readers (run once per text)."""

    def __init__(self, tmp: Path, budget: int = 6) -> None:
        self.tmp = tmp
        self.seen: dict[tuple[str, str], None] = {}
        self.budget = {"haproxy": budget, "keepalived": budget + 4, "cib": budget}
        self.count = 0
        self.ns: str | None = None  # keepalived checks its VRRP interface exists: in here
        self.links: set[str] = set()

    def close(self) -> None:
        if self.ns is not None:
            subprocess.run(
                programs.command(["ip", "netns", "del", self.ns]), capture_output=True, timeout=30
            )
            self.ns = None

    def _keepalived(self, text: str) -> None:
        """``keepalived --config-test`` in a namespace holding the interfaces it names
        (root only; each name must be one the kernel accepts)."""
        if os.geteuid() != 0 or ("keepalived", text) in self.seen:
            return
        if self.ns is None:
            self.ns = f"pv18{secrets.token_hex(3)}"
            run(["ip", "netns", "add", self.ns])
        for name in re.findall(r"(?m)^\s*interface (\S+)$|dev (\S+)$", text):
            link = name[0] or name[1]
            if link in self.links:
                continue
            peer = f"pv18p{len(self.links)}"
            made = run(
                ["ip", "-n", self.ns, "link", "add", link, "type", "veth", "peer", "name", peer],
                check=False,
            )
            assert made.returncode == 0, f"interface {link!r} cannot exist: {made.stderr}"
            self.links.add(link)
        self._program(
            "keepalived",
            text,
            lambda p: [
                "ip",
                "netns",
                "exec",
                str(self.ns),
                "keepalived",
                "--config-test",
                "-f",
                str(p),
            ],
        )

    def _program(self, kind: str, text: str, cmd: Callable[[Path], list[str]]) -> None:
        if (kind, text) in self.seen:
            return
        if kind in self.budget:
            if self.budget[kind] <= 0:
                return
            self.budget[kind] -= 1
        self.seen[(kind, text)] = None
        self.count += 1
        path = self.tmp / f"{kind}-{self.count}"
        path.write_text(text)
        result = subprocess.run(
            programs.command(cmd(path)), capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, (kind, text, result.stdout + result.stderr)

    def shape(self, rel: str, text: str, names: list[str]) -> Any:
        """What must not change with a value: the line-by-line skeleton of the file."""
        lines = text.splitlines()
        parts = text.split("\n")
        if parts[-1] == "":
            parts.pop()
        assert parts == lines, (rel, "a line break other than \\n")
        node = re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b")
        # a line's keyword; a value alone on its line (a peer address) counts by its form
        first = [
            re.sub(r"\d+", "0", node.sub("<node>", (line.split() or [""])[0])) for line in lines
        ]
        indent = [len(line) - len(line.lstrip(" ")) for line in lines]
        shape: list[Any] = [len(lines), first, indent]
        if rel.endswith(".sh") or rel == "memcached/memcached":  # memcached's sysconfig
            self._program("sh", text, lambda p: ["bash", "-n", str(p)])
        elif rel.endswith(".xml"):
            root = ET.fromstring(text)
            self._program(
                "cib",
                _as_running_cluster(text, [e.attrib["uname"] for e in root.iter("node")]),
                lambda p: ["crm_verify", "--xml-file", str(p)],
            )
            shape.append([(e.tag, sorted(e.attrib)) for e in root.iter()])
        elif rel.endswith(".env"):  # the controllers' shared keys: NAME='hex or base64'
            assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*='[A-Za-z0-9+/=_-]+'", ln) for ln in lines)
            shape = [[ln.split("=")[0] for ln in lines]]
        elif rel.endswith(".json"):  # json.dumps'd data: its length follows the site
            shape = [sorted(json.loads(text))]
        elif rel.endswith(".py"):  # Horizon's local_settings: Python, one statement a line
            tree = ast.parse(text)
            shape.append([(type(n).__name__, ast.unparse(n).split("=")[0]) for n in tree.body])
        elif rel.startswith("apache/"):  # the WSGI APIs' Listen lines
            listens = [line for line in lines if line and not line.startswith("#")]
            assert all(re.fullmatch(r"Listen [0-9.]+:\d+", line) for line in listens), rel
            shape.append(len(listens))
        elif rel.startswith("haproxy/"):
            self._program(
                "haproxy", self._haproxy_testable(text), lambda p: ["haproxy", "-c", "-f", str(p)]
            )
        elif rel.startswith(("keepalived/", "corosync/")):
            if rel.startswith("keepalived/"):
                self._keepalived(text)
            depth = 0
            for line in lines:
                depth += line.count("{") - line.count("}")
                assert depth >= 0, (rel, line)
            assert depth == 0, rel
            assert all(line.count('"') % 2 == 0 for line in lines), rel
        elif rel.startswith(("rabbitmq/", "sysctl/")):
            keys = []
            for line in lines:
                if line and not line.startswith("#"):
                    match = re.fullmatch(r"([\w.]+) = (\S+)", line)
                    assert match, (rel, line)
                    keys.append(node.sub("<node>", match.group(1)))
            shape.append(keys)
        elif rel.startswith("memcached/"):
            assert all(line.startswith(("#", "-")) for line in lines if line), rel
        elif rel == "kolla/multinode":
            parser = configparser.ConfigParser(
                strict=True, interpolation=None, allow_no_value=True, delimiters=("=",)
            )
            parser.read_string(text)
            shape.append([(s, len(parser[s])) for s in parser.sections()])
        else:  # the OpenStack, MariaDB and Swift files: INI, oslo.config's reading of it
            # oslo.config's multi-valued options repeat their key (service_provider): the
            # line skeleton above still sees every one of them
            multi = rel.endswith("service-providers.conf")
            parser = configparser.ConfigParser(strict=not multi, interpolation=None)
            parser.optionxform = str  # type: ignore[assignment,method-assign]
            parser.read_string(text)
            shape.append([(s, list(parser[s])) for s in parser.sections()])
            shape.append(list(parser.defaults()))
        return shape

    @staticmethod
    def _haproxy_testable(text: str) -> str:
        """``haproxy -c`` as an unprivileged checker: no user/group switch."""
        return re.sub(r"(?m)^    (user|group) haproxy$", r"    # \1 haproxy", text)


@pytest.fixture
def checkers(tmp_path: Path) -> Iterator[Callable[[int], Checker]]:
    """Checker(budget) in this test's tmp dir; their namespaces removed afterwards."""
    made: list[Checker] = []

    def make(budget: int) -> Checker:
        made.append(Checker(tmp_path, budget))
        return made[-1]

    yield make
    for checker in made:
        checker.close()


def test_the_checks_see_an_injected_line(
    site_copy: Path, raw: Any, checkers: Callable[[int], Checker]
) -> None:
    """The shape comparison is not blind: one added line in any kind of file is seen."""
    site, _problems = parse_site(copy.deepcopy(raw), site_copy / "site.yaml")
    assert site is not None
    clean = bundles(site)
    names = [n.name for n in site.nodes]
    checker = checkers(100)
    kinds = {rel.split("/")[0] for _i, rel in clean}
    assert {"haproxy", "keepalived", "pacemaker", "galera", "neutron", "swift"} <= kinds
    for key, text in clean.items():
        rel = key[1]
        injected = text.replace("\n", "\nextra = 1\n", 1) if "\n" in text else text + "\nx\n"
        try:
            same = checker.shape(rel, injected, names) == checker.shape(rel, text, names)
        except (AssertionError, configparser.Error, ET.ParseError, json.JSONDecodeError):
            same = False
        assert not same, rel


#: fields whose valid values change a file's lines (one Swift device a disk): their renders
#: are checked as their formats, not against the clean render's skeleton
STRUCTURAL = {"storage.disks.count"}


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_hostile_values_are_refused_or_leave_every_bundle_file_well_formed(
    name: str, raw: Any, site_copy: Path, checkers: Callable[[int], Checker]
) -> None:
    path, values, fields = FIELDS[name]
    checker = checkers(6)
    references: dict[str, tuple[list[str], dict[tuple[int, str], Any]]] = {}

    def reference(family: str) -> tuple[list[str], dict[tuple[int, str], Any]]:
        """The clean render's shapes, for the same OS family (its files differ)."""
        if family not in references:
            data = copy.deepcopy(raw)
            _set(data, ("profiles", "rocky9", "os_family"), family)
            site, _ = parse_site(data, site_copy / "site.yaml")
            assert site is not None
            names = [n.name for n in site.nodes]
            shapes = {k: checker.shape(k[1], t, names) for k, t in bundles(site).items()}
            references[family] = (names, shapes)
        return references[family]

    outcomes = {"refused": 0, "rendered": 0}

    @FAST
    @given(value=values)
    def check(value: Any) -> None:
        data = copy.deepcopy(raw)
        _set(data, path, value)
        site, problems = parse_site(data, site_copy / "site.yaml")
        errors = [p for p in problems if p.severity == "error"]
        if errors or site is None:
            assert errors, problems
            for problem in errors:
                assert problem.where and problem.field, problem
                assert "\n" not in str(problem) and "\u2028" not in str(problem), problem
            assert any(re.fullmatch(fields, p.field) for p in errors), errors
            outcomes["refused"] += 1
            return
        try:
            files = bundles(site)
        except RoleConfigError as exc:
            # a site validate warned about (naming node and field): the generator refuses
            # too, naming the node, and writes nothing
            warned = [p for p in problems if p.severity == "warning" and p.field]
            assert any(re.fullmatch(fields, p.field) for p in warned), (value, exc, problems)
            assert str(exc).startswith("node "), exc
            outcomes["refused"] += 1
            return
        names = [n.name for n in site.nodes]
        family = site.profiles["rocky9"].os_family
        _clean_names, clean = reference(family)
        assert set(files) == set(clean), set(files) ^ set(clean)
        for key, text in files.items():
            shape = checker.shape(key[1], text, names)  # parsed and checked as its format
            if name not in STRUCTURAL:
                assert shape == clean[key], (key, value)
        outcomes["rendered"] += 1

    check()
    assert outcomes["rendered"] >= 1, outcomes  # a valid value went all the way through
