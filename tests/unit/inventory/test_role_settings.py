"""Role settings have a grammar per role kind: `validate` refuses an unknown or malformed
setting, naming the role, the field and its line, and the role modules read typed values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provisioner.errors import RoleConfigError
from provisioner.inventory import Problem, load_site
from provisioner.inventory.loader import validate_site_file
from provisioner.inventory.rolesettings import ControllerSettings, StorageSettings
from provisioner.roles import DeployFacts, generate


def _validate(site_dir: Path, text: str) -> list[Problem]:
    (site_dir / "site.yaml").write_text(text)
    return validate_site_file(site_dir / "site.yaml")[1]


def _with_settings(text: str, role: str, settings: str) -> str:
    """The example with ``settings`` (a YAML flow mapping) on ``role``."""
    head = f"\n  {role}:\n"
    start = text.index(head) + len(head)
    match = re.compile(r"\n(?!    )").search(text, start)
    assert match is not None
    end = match.start()
    block = re.sub(r"(?m)^    settings: .*\n", "", text[start:end] + "\n")
    return text[:start] + block + f"    settings: {settings}" + text[end:]


@pytest.mark.parametrize(
    ("role", "settings", "field", "message"),
    [
        ("controller", "{memcached_memroy_mb: 512}", "settings.memcached_memroy_mb", "unknown"),
        (
            "controller",
            "{memcached_memory_mb: 8}",
            "settings.memcached_memory_mb",
            "greater than or equal to 64",
        ),
        ("controller", "{memcached_memory_mb: '512'}", "settings.memcached_memory_mb", "integer"),
        (
            "controller",
            "{vrrp_check_script: 'pgrep haproxy; rm -rf /'}",
            "settings.vrrp_check_script",
            "pattern",
        ),
        ("controller", "{glance_store: nfs}", "settings.glance_store", "'swift', 'rbd' or 'file'"),
        (
            "network",
            "{l3_ha_net_cidr: 10.0.0.1/8}",
            "settings.l3_ha_net_cidr",
            "not a valid IPv4 network",
        ),
        ("network", "{ha_vrrp_auth_password: plain}", "settings.ha_vrrp_auth_password", ""),
        (
            "network",
            "{dhcp_agents_per_network: 0}",
            "settings.dhcp_agents_per_network",
            "greater than or equal to 1",
        ),
        ("storage", "{cinder_backend: nfs}", "settings.cinder_backend", "'lvm' or 'rbd'"),
        ("compute", "{bridge_mappings: 'physnet1 br-ex'}", "settings.bridge_mappings", "pattern"),
        # a setting of another kind is unknown here: compute nodes have no Galera
        ("compute", "{galera_new_cluster: true}", "settings.galera_new_cluster", "unknown"),
    ],
)
def test_validate_refuses_a_bad_setting_naming_role_field_and_line(
    site_dir: Path, example_text: str, role: str, settings: str, field: str, message: str
) -> None:
    text = _with_settings(example_text, role, settings)
    problems = [p for p in _validate(site_dir, text) if p.severity == "error"]
    assert [(p.where, p.field) for p in problems] == [(f"role {role}", field)]
    assert message in problems[0].message
    line = next(
        i
        for i, t in enumerate(text.splitlines(), 1)
        if t.startswith("    settings: {") and settings in t
    )
    assert problems[0].line == line


def test_the_example_settings_are_typed(site_dir: Path) -> None:
    site = load_site(site_dir / "site.yaml")
    storage = site.role_settings("storage")
    assert isinstance(storage, StorageSettings) and storage.cinder_backend == "lvm"
    ctl = site.role_settings("controller")
    assert isinstance(ctl, ControllerSettings) and ctl.memcached_memory_mb == 1024


def test_a_site_built_without_validate_still_gets_the_error_at_generation(
    site_dir: Path,
) -> None:
    site = load_site(site_dir / "site.yaml")
    roles = dict(site.roles)
    roles["controller"] = roles["controller"].model_copy(
        update={"settings": {"corosync_keyfile": "relative/key"}}
    )
    broken = site.model_copy(update={"roles": roles})
    with pytest.raises(RoleConfigError, match=r"role controller settings\.corosync_keyfile"):
        generate(broken, "ctl1", DeployFacts())
    # the unedited site is untouched by the copy's settings
    assert "authkey" in generate(site, "ctl1", DeployFacts())["corosync/corosync.conf"]


def test_octavia_placed_by_halves_is_a_warning(site_dir: Path, example_text: str) -> None:
    text = example_text.replace(
        "settings: {glance_store: swift}", "settings: {glance_store: swift, octavia: true}"
    )
    warnings = [p for p in _validate(site_dir, text) if p.severity == "warning"]
    found = [(p.where, p.field) for p in warnings if "Octavia" in p.message]
    assert found == [("role controller", "settings.octavia")]
    assert "no network role has octavia_health_manager" in warnings[0].message
    both = _with_settings(text, "network", "{octavia_health_manager: true}")
    assert not [p for p in _validate(site_dir, both) if "Octavia" in p.message]


def test_glance_on_rbd_without_ceph_monitors_is_refused(site_dir: Path, example_text: str) -> None:
    text = example_text.replace("settings: {glance_store: swift}", "settings: {glance_store: rbd}")
    errors = [p for p in _validate(site_dir, text) if p.severity == "error"]
    assert [(p.where, p.field) for p in errors] == [("role controller", "settings.glance_store")]
    assert "ceph_monitors" in errors[0].message
    fixed = _with_settings(text, "storage", "{cinder_backend: rbd, ceph_monitors: [192.0.2.30]}")
    assert not [p for p in _validate(site_dir, fixed) if p.severity == "error"]


def test_cinder_lvm_is_a_warning_until_the_operator_says_they_know(
    site_dir: Path, example_text: str
) -> None:
    assert not [p for p in _validate(site_dir, example_text) if p.severity == "warning"]
    text = _with_settings(example_text, "storage", "{cinder_backend: lvm}")
    (warning,) = [p for p in _validate(site_dir, text) if p.severity == "warning"]
    assert (warning.where, warning.field) == ("role storage", "settings.cinder_backend")
    assert "unreachable" in warning.message and "lost with its disks" in warning.message


def test_the_published_schema_knows_the_settings(example_text: str) -> None:
    """Editors using schema/site.schema.json see a misspelt setting too."""
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from provisioner.inventory.schema import site_schema

    schema = site_schema()
    jsonschema.validate(yaml.safe_load(example_text), schema)
    bad = yaml.safe_load(_with_settings(example_text, "controller", "{memcached_memroy_mb: 1}"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
