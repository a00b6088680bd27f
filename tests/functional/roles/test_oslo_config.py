"""Every rendered OpenStack file, checked by the projects' own ``oslo-config-validator``
against their real option definitions, for both OS families.

Needs the projects installed (``pip install -e '.[openstack]'``, about 2 minutes): skipped
with that reason only when they are not. Backend sections Cinder registers at run time
(``[lvm]``, ``[rbd]``: the names in ``enabled_backends``) are unknown to the validator, so
their options are checked under ``[backend_defaults]``, which declares the same options.
"""

from __future__ import annotations

import configparser
import re
import subprocess
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.inventory import Site
from provisioner.roles import DeployFacts, generate

pytestmark = pytest.mark.functional

AUTH = "keystonemiddleware.auth_token"
MESSAGING = ("oslo.messaging", "oslo.log")
#: bundle path -> the option namespaces of the service that reads it
NAMESPACES: dict[str, tuple[str, ...]] = {
    "openstack/oslo-messaging.conf": ("oslo.messaging", "oslo.cache"),
    "neutron/neutron.conf.d/l3-ha.conf": ("neutron", "neutron.db", *MESSAGING),
    "neutron/l3_agent.ini": (
        *("neutron.l3.agent", "neutron.base.agent", "neutron.az.agent"),
        *("neutron.vpnaas.agent", "firewall.agent"),
    ),
    "neutron/neutron.conf.d/service-providers.conf": ("neutron", "neutron.vpnaas", "neutron.fwaas"),
    "octavia/octavia.conf": ("octavia", AUTH, "oslo.db", *MESSAGING),
    "octavia/octavia-health-manager.conf": ("octavia", "oslo.db", *MESSAGING),
    "neutron/dhcp_agent.ini": ("neutron.dhcp.agent", "neutron.base.agent", "neutron.az.agent"),
    "neutron/metadata_agent.ini": ("neutron.metadata.agent",),
    "secrets/neutron-l3-ha-vrrp.conf": ("neutron.l3.agent",),
    "cinder/cinder.conf": ("cinder", AUTH, "oslo.db", "oslo.concurrency", *MESSAGING),
    "nova/nova-compute.conf": ("nova.conf", AUTH, "oslo.concurrency", *MESSAGING),
    "neutron/neutron.conf.d/l2-agent.conf": ("neutron", "neutron.agent", AUTH, *MESSAGING),
    "neutron/openvswitch_agent.ini": ("neutron.ml2.ovs.agent", "neutron.base.agent"),
    "keystone/keystone.conf": ("keystone", "oslo.db", "oslo.cache", *MESSAGING),
    "glance/glance-api.conf": (
        *("glance.api", "glance.multi_store", "glance.store", AUTH, "oslo.db", *MESSAGING),
    ),
    "heat/heat.conf": (
        *("heat.common.config", "heat.common.wsgi", "heat.engine.clients", AUTH),
        *("heat.common.context", "heat.engine.clients.os.keystone.heat_keystoneclient"),
        *("oslo.db", "oslo.cache", *MESSAGING),
    ),
    "nova/nova.conf": ("nova.conf", AUTH, "oslo.concurrency", *MESSAGING),
    "placement/placement.conf": ("placement.conf", AUTH),
    "neutron/neutron.conf": (
        *("neutron", "neutron.db", "nova.auth", AUTH, "oslo.db", "oslo.concurrency", *MESSAGING),
    ),
}
#: where a bundle keeps OpenStack files (every file under these must be listed above)
OPENSTACK_DIRS = {
    *("openstack", "nova", "neutron", "cinder", "glance", "keystone", "heat", "placement"),
    "octavia",
}
PROJECTS = (
    *("nova.conf", "neutron", "cinder", "keystone", "glance", "heat.common.config"),
    *("placement.conf", "neutron.vpnaas", "neutron.fwaas", "octavia"),
)


def installed_namespaces() -> set[str]:
    return {ep.name for ep in entry_points(group="oslo.config.opts")}


def validator() -> str:
    missing = [p for p in PROJECTS if p not in installed_namespaces()]
    found = programs.find("oslo-config-validator")
    if missing or not found:
        pytest.skip(
            "OpenStack projects not installed (option namespaces missing: "
            f"{', '.join(missing) or 'none'}): pip install -e '.[openstack]'"
        )
    return found


def is_openstack_file(rel: str) -> bool:
    top = rel.split("/", 1)[0]
    return top in OPENSTACK_DIRS or (top == "secrets" and "neutron" in rel)


def for_validator(text: str) -> str:
    """The dynamic backend sections renamed to where their options are declared: Cinder's
    to [backend_defaults], Glance's stores to [glance_store]."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(text)
    backends = parser.get("DEFAULT", "enabled_backends", fallback="")
    for backend in filter(None, (b.strip() for b in backends.split(","))):
        # Glance names its stores "name:type" and declares their options in [glance_store]
        name, glance = backend.split(":", 1)[0], ":" in backend
        known = "glance_store" if glance else "backend_defaults"
        text = re.sub(rf"^\[{re.escape(name)}\]$", f"[{known}]", text, flags=re.M)
    return text


def validate(
    tool: str, path: Path, namespaces: tuple[str, ...]
) -> subprocess.CompletedProcess[str]:
    cmd = [tool, "--fatal-warnings", "--input-file", str(path)]
    for namespace in namespaces:
        cmd += ["--namespace", namespace]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    return re.findall(r"^(?:ERROR|WARNING):oslo_config\.validator:(.*)$", result.stderr, re.M)


def with_family(site: Site, family: str) -> Site:
    """The site with ``family``'s profiles, and Octavia placed (its files rendered too)."""
    profiles = {n: p.model_copy(update={"os_family": family}) for n, p in site.profiles.items()}
    roles = dict(site.roles)
    for name, key in (("controller", "octavia"), ("network", "octavia_health_manager")):
        role = roles[name]
        roles[name] = role.model_copy(update={"settings": {**role.settings, key: True}})
    return site.model_copy(update={"profiles": profiles, "roles": roles})


def one_node_per_kind(site: Site) -> list[str]:
    return [
        min(n.name for n in site.nodes_of_kind(kind))
        for kind in sorted({site.role_kind(n.role) for n in site.nodes})
    ]


@pytest.mark.parametrize("family", ["rhel", "debian"])
def test_every_openstack_file_passes_oslo_config_validator(
    lab_site: Site, tmp_path: Path, family: str
) -> None:
    tool = validator()
    site = with_family(lab_site, family)
    checked, failures = [], []
    for node in one_node_per_kind(site):
        for rel, text in sorted(generate(site, node, DeployFacts()).items()):
            if not is_openstack_file(rel):
                continue
            assert rel in NAMESPACES, f"{rel}: an OpenStack file without its namespaces here"
            path = tmp_path / node / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(for_validator(text))
            result = validate(tool, path, NAMESPACES[rel])
            checked.append(rel)
            if result.returncode != 0:
                failures.append(f"{node}:{rel}: {errors(result) or result.stderr[-2000:]}")
    assert not failures, "\n".join(failures)
    assert set(checked) == set(NAMESPACES)  # every listed file is still rendered and checked


@pytest.mark.parametrize(
    "settings",
    [
        {"glance_store": "rbd"},
        {"glance_store": "file", "glance_shared_path": "/srv/glance"},
        {"glance_store": None},  # each controller's own disk
    ],
)
def test_every_glance_store_passes_the_validator(
    lab_site: Site, tmp_path: Path, settings: dict[str, str | None]
) -> None:
    tool = validator()
    roles = dict(lab_site.roles)
    ctl = roles["controller"]
    roles["controller"] = ctl.model_copy(update={"settings": {**ctl.settings, **settings}})
    ceph = {"cinder_backend": "rbd", "ceph_monitors": ["203.0.113.30"]}
    roles["storage"] = roles["storage"].model_copy(update={"settings": ceph})
    site = lab_site.model_copy(update={"roles": roles})
    path = tmp_path / "glance-api.conf"
    path.write_text(for_validator(generate(site, "ctl1", DeployFacts())["glance/glance-api.conf"]))
    result = validate(tool, path, NAMESPACES["glance/glance-api.conf"])
    assert result.returncode == 0, errors(result) or result.stderr[-2000:]


def test_the_validator_rejects_an_option_the_project_does_not_have(
    lab_site: Site, tmp_path: Path
) -> None:
    tool = validator()
    text = generate(lab_site, "net1", DeployFacts())["neutron/neutron.conf.d/l3-ha.conf"]
    path = tmp_path / "l3-ha.conf"
    path.write_text(text.replace("l3_ha = true", "l3_ha = true\nmin_l3_agents_per_router = 2"))
    result = validate(tool, path, NAMESPACES["neutron/neutron.conf.d/l3-ha.conf"])
    assert result.returncode != 0
    assert errors(result) == ["DEFAULT/min_l3_agents_per_router is not part of the sample config"]


def test_cinder_with_rbd_and_ceph_backups_passes_the_validator(
    lab_site: Site, tmp_path: Path
) -> None:
    tool = validator()
    roles = dict(lab_site.roles)
    sto = roles["storage"]
    rbd = {"cinder_backend": "rbd", "ceph_monitors": ["203.0.113.30"]}
    roles["storage"] = sto.model_copy(update={"settings": rbd})
    site = lab_site.model_copy(update={"roles": roles})
    text = generate(site, "sto1", DeployFacts())["cinder/cinder.conf"]
    assert "backup_driver = cinder.backup.drivers.ceph.CephBackupDriver" in text
    path = tmp_path / "cinder.conf"
    path.write_text(for_validator(text))
    result = validate(tool, path, NAMESPACES["cinder/cinder.conf"])
    assert result.returncode == 0, errors(result) or result.stderr[-2000:]
