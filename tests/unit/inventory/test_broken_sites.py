"""Broken variants of the example site: every problem is reported, naming node and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.errors import InventoryInvalid, SiteFileError
from provisioner.inventory import Problem, load_site
from provisioner.inventory.loader import validate_site_file


def _validate(site_dir: Path, text: str) -> list[Problem]:
    (site_dir / "site.yaml").write_text(text)
    _site, problems = validate_site_file(site_dir / "site.yaml")
    return problems


def _errors(problems: list[Problem]) -> list[tuple[str, str, str]]:
    return [(p.where, p.field, p.message) for p in problems if p.severity == "error"]


def _node_block(text: str, name: str) -> str:
    start = text.index(f"  - name: {name}\n")
    end = text.find("  - name: ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _edit_node(text: str, name: str, old: str, new: str) -> str:
    block = _node_block(text, name)
    assert old in block, f"{old!r} not in {name}'s block"
    return text.replace(block, block.replace(old, new, 1))


# (description, edit function, expected (where, field, message fragment))
CASES = [
    (
        "duplicate MAC",
        lambda t: _edit_node(t, "ctl2", "52:54:00:00:02:0c", "52:54:00:00:02:0b"),
        ("node ctl2", "macs[0]", "duplicate MAC 52:54:00:00:02:0b (also node ctl1)"),
    ),
    (
        "duplicate IP",
        lambda t: _edit_node(t, "cmp3", "192.0.2.20", "192.0.2.18"),
        ("node cmp3", "ip", "duplicate IP 192.0.2.18 (also node cmp1)"),
    ),
    (
        "duplicate hostname",
        lambda t: _edit_node(t, "cmp3", "name: cmp3", "name: cmp2"),
        ("node cmp2", "name", "duplicate hostname cmp2 (also node cmp2)"),
    ),
    (
        "duplicate BMC address:port",
        lambda t: _edit_node(t, "sto2", "port: 6236", "port: 6235"),
        ("node sto2", "bmc.address", "duplicate BMC address 127.0.0.1:6235 (also node sto1)"),
    ),
    (
        "IP outside the subnet",
        lambda t: _edit_node(t, "net1", "192.0.2.14", "198.51.100.14"),
        ("node net1", "ip", "outside the provisioning subnet 192.0.2.0/24"),
    ),
    (
        "two nodes at one rack unit",
        lambda t: _edit_node(t, "ctl3", "position: 38", "position: 40"),
        ("node ctl3", "position", "rack r1 unit 40 already holds node ctl1"),
    ),
    (
        "a rack position without a rack",
        lambda t: _edit_node(t, "ctl1", "rack: r1\n    ", ""),
        ("node ctl1", "position", "a rack position needs the node's rack"),
    ),
    (
        "a rack position below the first unit",
        lambda t: _edit_node(t, "ctl1", "position: 40", "position: 0"),
        ("node ctl1", "position", "greater than or equal to 1"),
    ),
    (
        "IP inside the DHCP pool",
        lambda t: _edit_node(t, "net1", "192.0.2.14", "192.0.2.210"),
        ("node net1", "ip", "inside the DHCP dynamic pool"),
    ),
    (
        "malformed MAC",
        lambda t: _edit_node(t, "cmp1", '"52:54:00:00:02:12"', '"52:54:00:00:02"'),
        ("node cmp1", "macs[0]", "is not a MAC address"),
    ),
    (
        "unquoted MAC that YAML 1.1 would read as a number stays a string",
        lambda t: _edit_node(t, "cmp1", '"52:54:00:00:02:12"', "52:54:00:00:02:1x"),
        ("node cmp1", "macs[0]", "'52:54:00:00:02:1x' is not a MAC address"),
    ),
    (
        "malformed IP",
        lambda t: _edit_node(t, "cmp2", "192.0.2.19", "192.0.2.300"),
        ("node cmp2", "ip", "IPv4"),
    ),
    (
        "malformed hostname",
        lambda t: _edit_node(t, "cmp2", "name: cmp2", "name: Cmp_2"),
        ("node Cmp_2", "name", "'Cmp_2' is malformed"),
    ),
    (
        "unknown role",
        lambda t: _edit_node(t, "sto1", "role: storage", "role: storgae"),
        ("node sto1", "role", "unknown role 'storgae'"),
    ),
    (
        "unknown profile",
        lambda t: _edit_node(t, "cmp1", "role: compute", "role: compute\n    profile: ubuntu24"),
        ("node cmp1", "profile", "unknown profile 'ubuntu24'"),
    ),
    (
        "missing secret file",
        lambda t: _edit_node(
            t,
            "ctl3",
            "{file: secrets/bmc-password, generate: password}",
            "{file: secrets/ctl3-bmc}",
        ),
        ("node ctl3", "bmc.password", "missing secret: secret file"),
    ),
    (
        "missing secret environment variable",
        lambda t: t.replace(
            "{file: secrets/tsig.secret, generate: tsig}", "{env: PROVISIONER_TEST_UNSET_TSIG}"
        ),
        ("dns", "tsig.secret", "PROVISIONER_TEST_UNSET_TSIG is not set"),
    ),
    (
        "VIP colliding with a node IP",
        lambda t: t.replace("address: 192.0.2.10\n", "address: 192.0.2.12\n"),
        ("role controller", "ha.vips[0].address", "collides with node ctl2's IP"),
    ),
    (
        "fewer than two controllers",
        lambda t: _edit_node(
            _edit_node(t, "ctl2", "role: controller", "role: compute"),
            "ctl3",
            "role: controller",
            "role: compute",
        ),
        ("role controller", "", "1 controller node(s): an HA cloud needs at least two"),
    ),
    (
        "plaintext root password",
        lambda t: t.replace(
            "{file: secrets/root-password.hash, generate: crypt-hash}",
            "{file: secrets/bmc-password}",
        ),
        ("defaults", "root_password_hash", "does not hold a crypt(3) hash"),
    ),
    (
        "generated secret of the wrong kind",
        lambda t: t.replace("generate: crypt-hash}", "generate: password}"),
        ("defaults", "root_password_hash", "generate: password does not make this secret"),
    ),
    (
        "misspelt field",
        lambda t: _edit_node(t, "cmp1", "rack: r1", "rakc: r1"),
        ("node cmp1", "rakc", "unknown field"),
    ),
    (
        "missing required field",
        lambda t: _edit_node(t, "cmp1", "    ip: 192.0.2.18\n", ""),
        ("node cmp1", "ip", "required"),
    ),
]


@pytest.mark.parametrize(("edit", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_variant_names_node_and_field(site_dir: Path, example_text: str, edit, expected):
    problems = _validate(site_dir, edit(example_text))
    where, field, fragment = expected
    errors = _errors(problems)
    matching = [e for e in errors if e[0] == where and e[1] == field and fragment in e[2]]
    assert matching, f"no error {expected} in {errors}"


def test_every_problem_is_reported_at_once(site_dir: Path, example_text: str) -> None:
    text = _edit_node(example_text, "ctl2", "52:54:00:00:02:0c", "52:54:00:00:02:0b")
    text = _edit_node(text, "cmp2", "192.0.2.19", "192.0.2.300")  # this node fails to parse
    text = _edit_node(text, "sto1", "role: storage", "role: storgae")
    text = text.replace("address: 192.0.2.10\n", "address: 192.0.2.13\n")
    errors = _errors(_validate(site_dir, text))
    wheres = {(e[0], e[1]) for e in errors}
    assert {
        ("node ctl2", "macs[0]"),
        ("node cmp2", "ip"),
        ("node sto1", "role"),
        ("role controller", "ha.vips[0].address"),
    } <= wheres
    with pytest.raises(InventoryInvalid) as raised:
        load_site(site_dir / "site.yaml")
    assert len([p for p in raised.value.problems if p.severity == "error"]) == len(errors)


def test_problems_carry_the_line_of_the_field(site_dir: Path, example_text: str) -> None:
    text = _edit_node(example_text, "cmp3", "192.0.2.20", "192.0.2.18")
    problems = _validate(site_dir, text)
    (dup,) = [p for p in problems if p.where == "node cmp3" and p.field == "ip"]
    assert dup.line is not None
    assert text.splitlines()[dup.line - 1].strip() == "ip: 192.0.2.18"


def test_even_number_of_controllers_is_a_warning(site_dir: Path, example_text: str) -> None:
    text = _edit_node(example_text, "ctl3", "role: controller", "role: compute")
    problems = _validate(site_dir, text)
    assert _errors(problems) == []
    (warning,) = [p for p in problems if p.severity == "warning"]
    assert warning.where == "role controller"
    assert "galera" in warning.message and "even number" in warning.message


def test_malformed_yaml_reports_line_and_column(site_dir: Path, example_text: str) -> None:
    lines = example_text.splitlines()
    bad_line = lines.index("  gateway: 192.0.2.1")
    lines[bad_line] = "  gateway: [192.0.2.1"
    (site_dir / "site.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(SiteFileError) as raised:
        load_site(site_dir / "site.yaml")
    message = str(raised.value)
    assert "malformed YAML" in message
    assert f"site.yaml:{bad_line + 2}:" in message  # the flow sequence runs into the next line


def test_duplicate_yaml_key_is_an_error(site_dir: Path, example_text: str) -> None:
    text = example_text.replace(
        "  gateway: 192.0.2.1\n", "  gateway: 192.0.2.1\n  gateway: 192.0.2.5\n"
    )
    (site_dir / "site.yaml").write_text(text)
    with pytest.raises(SiteFileError, match="duplicate key 'gateway'"):
        load_site(site_dir / "site.yaml")


def test_unquoted_mac_and_octal_looking_values_stay_as_typed(
    site_dir: Path, example_text: str
) -> None:
    # YAML 1.1 reads 52:54:00:00:02:12 as a base-60 integer and 0623 as octal.
    text = _edit_node(example_text, "cmp1", '["52:54:00:00:02:12"]', "[52:54:00:00:02:12]")
    text = _edit_node(text, "cmp1", "rack: r1", "rack: 0623")
    (site_dir / "site.yaml").write_text(text)
    site = load_site(site_dir / "site.yaml")
    assert site.node("cmp1").macs == ["52:54:00:00:02:12"]
    assert site.node("cmp1").rack == "0623"


@pytest.mark.parametrize(
    ("demote", "says"),
    [
        (["net2"], "1 network node(s), the cloud guide asks for at least 2: HA routers"),
        (["net1", "net2"], "0 network node(s)"),
        (["sto2"], "1 storage node(s), the cloud guide asks for at least 2: Swift"),
    ],
)
def test_a_role_below_the_guides_minimum_is_a_warning_saying_why(
    site_dir: Path, example_text: str, demote: list[str], says: str
) -> None:
    text = example_text
    for name in demote:
        role = "network" if name.startswith("net") else "storage"
        text = _edit_node(text, name, f"role: {role}", "role: compute")
    problems = _validate(site_dir, text)
    assert _errors(problems) == []
    (warning,) = [p for p in problems if "cloud guide" in p.message]
    assert says in warning.message and warning.severity == "warning"
    assert warning.where == f"role {'network' if 'network' in says else 'storage'}"
    assert not [p for p in _validate(site_dir, example_text) if "cloud guide" in p.message]
