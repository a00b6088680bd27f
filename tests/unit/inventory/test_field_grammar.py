"""The grammar of site.yaml's text fields (issue 18): each finding of the issue, refused
with the section/node and field named; the forms operators write, accepted."""

# ruff: noqa: E501 - tables of site.yaml edits read best one case a line
from __future__ import annotations

import base64
import shlex
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.errors import TemplateError
from provisioner.inventory import Problem
from provisioner.inventory.loader import validate_site_file
from provisioner.templating import FILTERS


def _problems(site_dir: Path, old: str, new: str) -> list[tuple[str, str, str]]:
    path = site_dir / "site.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    _site, problems = validate_site_file(path)
    return [_key(p) for p in problems if p.severity == "error"]


def _key(p: Problem) -> tuple[str, str, str]:
    return (p.where, p.field, p.message)


@pytest.mark.parametrize(
    ("old", "new", "where", "field", "says"),
    [
        ("timezone: UTC", "timezone: Not/AZone", "defaults", "timezone", "tz database"),
        ('"52:54:00:00:02:0b"', '"00:00:00:00:00:00"', "node ctl1", "macs[0]", "all-zero"),
        ('"52:54:00:00:02:0b"', '"01:00:5e:00:00:01"', "node ctl1", "macs[0]", "multicast"),
        ("kickstart: default.ks.j2", "kickstart: /etc/passwd", "profile rocky9", "kickstart", ""),
        ("layout: controller", "layout: ../../../../etc/passwd", "role controller", "layout", ""),
        ("layout: network", "layout: network\n    hooks: [common, ../x]", "role network", "hooks[1]", ""),
        ("repo: http://", "repo: file://", "profile rocky9", "repo", "http://"),
        ("repo: http://192.0.2.2:8080/repo/rocky9/BaseOS/x86_64/os/", "repo: 'http://192.0.2.2:8080/ x'", "profile rocky9", "repo", ""),
        ("ssh_keys: []", "ssh_keys: [ssh-ed25519 AAAA]", "defaults", "ssh_keys[0]", "base64"),
        ("ssh_keys: []", "ssh_keys: ['ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIA== x']", "defaults", "ssh_keys[0]", "'ssh-ed25519' key, not ssh-rsa"),
        ("  timezone: UTC", "  timezone: UTC\n  language: 'en_US.UTF-8; reboot'", "defaults", "language", ""),
        ("packages: [chrony]", "packages: ['chrony vim']", "role controller", "packages[0]", ""),
        ("rack: r1", "rack: 'r1 #'", "node ctl1", "rack", ""),
        ("user: admin", "user: 'admin\"'", "node ctl1", "bmc.user", ""),
        ("kickstart: default.ks.j2", "kickstart: default.ks.j2\n    kernel_args: 'a=${x}'", "profile rocky9", "kernel_args", "'$'"),
    ],
)  # fmt: skip
def test_each_field_refuses_what_would_inject(
    site_dir: Path, old: str, new: str, where: str, field: str, says: str
) -> None:
    errors = _problems(site_dir, old, new)
    assert [(w, f) for w, f, _m in errors] == [(where, field)], errors
    assert says in errors[0][2]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("timezone: UTC", "timezone: America/Argentina/Buenos_Aires"),
        ("kickstart: default.ks.j2", "kickstart: default.ks.j2\n    kernel_args: [console=ttyS0, quiet]"),
        ("kickstart: default.ks.j2", "kickstart: default.ks.j2\n    kernel_args: 'console=ttyS0,115200  ip=::::x:eth0:off'"),
        ("repo: http://192.0.2.2:8080/repo/rocky9/BaseOS/x86_64/os/", "repo: 'nfs:192.0.2.2:/export/rocky9'"),
        ("packages: [chrony]", "packages: ['@^minimal-environment', -iwl7260-firmware, libstdc++, python3.11]"),
        ("ssh_keys: []", "ssh_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh ops@bastion (2026)']"),
        ("  timezone: UTC", "  timezone: UTC\n  language: C.UTF-8"),
    ],
)  # fmt: skip
def test_what_operators_write_is_accepted(site_dir: Path, old: str, new: str) -> None:
    assert _problems(site_dir, old, new) == []


@pytest.mark.parametrize(
    ("secret", "says"),
    [
        ("not base64 at all!", "does not hold a base64 TSIG secret"),
        (base64.b64encode(b"short").decode(), "5-byte TSIG secret"),
    ],
)
def test_tsig_secret_must_be_base64_of_a_sane_length(
    site_dir: Path, secret: str, says: str
) -> None:
    (site_dir / "secrets" / "tsig.secret").write_text(secret + "\n")
    _site, problems = validate_site_file(site_dir / "site.yaml")
    errors = [_key(p) for p in problems if p.severity == "error"]
    assert [(w, f) for w, f, _m in errors] == [("dns", "tsig.secret")]
    assert says in errors[0][2] and secret not in errors[0][2]


# -- the escaping filters, whatever reaches them ------------------------------------------

ANY_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from("\n\r\x00\u2028 '\"$#%\\"),
    max_size=30,
)  # fmt: skip


def _apply(name: str, value: str) -> str | None:
    try:
        return str(FILTERS[name](value))
    except TemplateError:
        return None


@settings(max_examples=200, deadline=None)
@given(ANY_TEXT)
def test_filters_never_let_a_value_start_a_line(value: str) -> None:
    for name in ("sh", "ks", "oneline", "ini", "ipxe", "ipxe_args", "word", "debconf"):
        out = _apply(name, value)
        if out is not None:
            assert len((out + "x").splitlines()) == 1, (name, value, out)
    quoted = _apply("sh", value)
    if quoted is not None:
        assert shlex.split(quoted) == [value]
    ks = _apply("ks", value)
    if ks is not None:
        assert shlex.split(ks, comments=True) == [value]  # how pykickstart splits a command
    ipxe = _apply("ipxe", value)
    if ipxe is not None:
        assert ipxe == value and "$" not in value and not any(c.isspace() for c in value)
    word = _apply("word", value)
    if word is not None:
        assert word and word[0] not in "%#" and "\\" not in word
    assert _apply("yaml", value) is not None and "\n" not in str(_apply("yaml", value))
