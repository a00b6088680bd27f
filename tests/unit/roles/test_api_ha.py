"""The controllers' APIs carry their own HA settings: what an operator checks in each file."""

from __future__ import annotations

import configparser
import shutil
from pathlib import Path

import pytest

from provisioner.inventory import Site, load_site
from provisioner.roles import DeployFacts, RoleConfigError, generate
from provisioner.roles.services import wsgi_services
from tests.example_secrets import seed_example_secrets

REPO = Path(__file__).resolve().parents[3]
VIP = "192.0.2.10"
CTL_IPS = ["192.0.2.11", "192.0.2.12", "192.0.2.13"]
RABBIT = "rabbit://" + ",".join(f"openstack@{ip}:5672" for ip in CTL_IPS) + "/"
MEMCACHED = ",".join(f"{ip}:11211" for ip in CTL_IPS)
#: file -> (database section and name, or None; has keystone_authtoken)
API_FILES = {
    "keystone/keystone.conf": ([("database", "keystone")], False),
    "glance/glance-api.conf": ([("database", "glance")], True),
    "heat/heat.conf": ([("database", "heat")], True),
    "nova/nova.conf": ([("database", "nova"), ("api_database", "nova_api")], True),
    "placement/placement.conf": ([("placement_database", "placement")], True),
    "neutron/neutron.conf": ([("database", "neutron")], True),
    "cinder/cinder.conf": ([("database", "cinder")], True),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    folder = tmp_path_factory.mktemp("example")
    shutil.copy(REPO / "examples" / "site.yaml", folder / "site.yaml")
    seed_example_secrets(folder / "secrets")
    return load_site(folder / "site.yaml")


def ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def with_controller_settings(site: Site, **settings: object) -> Site:
    roles = dict(site.roles)
    roles["controller"] = roles["controller"].model_copy(update={"settings": settings})
    return site.model_copy(update={"roles": roles})


@pytest.mark.parametrize("rel", sorted(API_FILES))
def test_every_api_goes_through_the_vip_and_lists_every_cluster_member(
    site: Site, rel: str
) -> None:
    dbs, authtoken = API_FILES[rel]
    conf = ini(generate(site, "ctl2", DeployFacts())[rel])
    for section, name in dbs:
        url = conf.get(section, "connection")
        assert url.startswith(f"mysql+pymysql://{name}@{VIP}:3306/{name}?"), url
        assert ":" not in url.split("//", 1)[1].split("@", 1)[0]  # no password in the bundle
        assert f"read_default_file=/etc/provisioner/db/{name}.cnf" in url
    if rel != "placement/placement.conf":  # placement sends no messages
        assert conf.get("DEFAULT", "transport_url") == RABBIT
    if authtoken:
        assert conf.get("keystone_authtoken", "www_authenticate_uri") == f"http://{VIP}:5000"
        assert conf.get("keystone_authtoken", "auth_url") == f"http://{VIP}:5000"
        assert conf.get("keystone_authtoken", "memcached_servers") == MEMCACHED
    if conf.has_section("cache"):
        assert conf.get("cache", "memcache_servers") == MEMCACHED


def test_the_apis_listen_on_the_nodes_own_address(site: Site) -> None:
    bundle = generate(site, "ctl2", DeployFacts())
    listen = [
        line
        for line in bundle["apache/openstack-listen.conf"].splitlines()
        if line.startswith("Listen")
    ]
    assert listen == [f"Listen 192.0.2.12:{svc.port}" for svc in wsgi_services("controller")]
    assert {svc.name for svc in wsgi_services("controller")} >= {
        *["keystone", "glance", "nova", "nova-metadata", "placement", "neutron", "heat"],
        *["heat-cfn", "horizon", "cinder"],
    }
    vnc = ini(bundle["nova/nova.conf"])["vnc"]
    assert (vnc["novncproxy_host"], vnc["novncproxy_port"]) == ("192.0.2.12", "6080")
    assert vnc["novncproxy_base_url"] == f"http://{VIP}:6080/vnc_auto.html"
    heat = ini(bundle["heat/heat.conf"])["DEFAULT"]
    assert heat["heat_metadata_server_url"] == f"http://{VIP}:8000"


def test_horizon_keeps_sessions_in_every_controllers_memcached(site: Site) -> None:
    text = generate(site, "ctl1", DeployFacts())["horizon/local_settings.py"]
    settings: dict[str, object] = {}
    exec(compile(text, "local_settings.py", "exec"), settings)
    assert settings["SESSION_ENGINE"] == "django.contrib.sessions.backends.cache"
    caches = settings["CACHES"]
    assert isinstance(caches, dict)
    assert caches["default"]["LOCATION"] == [f"{ip}:11211" for ip in CTL_IPS]
    assert settings["OPENSTACK_KEYSTONE_URL"] == f"http://{VIP}:5000/v3"


def test_glance_store_is_the_one_the_settings_state(site: Site) -> None:
    swift = ini(generate(site, "ctl1", DeployFacts())["glance/glance-api.conf"])
    assert swift.get("DEFAULT", "enabled_backends") == "swift:swift"
    assert swift.get("swift", "swift_store_auth_address") == f"http://{VIP}:5000/v3"
    rbd = with_controller_settings(site, glance_store="rbd", glance_rbd_pool="img")
    with pytest.raises(RoleConfigError, match="no storage role states ceph_monitors"):
        generate(rbd, "ctl1", DeployFacts())
    sto = rbd.roles["storage"].model_copy(
        update={"settings": {"cinder_backend": "rbd", "ceph_monitors": ["192.0.2.30"]}}
    )
    rbd = rbd.model_copy(update={"roles": {**rbd.roles, "storage": sto}})
    bundle = generate(rbd, "ctl1", DeployFacts())
    conf = ini(bundle["glance/glance-api.conf"])
    assert conf.get("rbd", "rbd_store_pool") == "img"
    assert conf.get("rbd", "rbd_store_ceph_conf") == "/etc/ceph/ceph.conf"
    ceph = ini(bundle["ceph/ceph.conf"])
    assert ceph.get("global", "mon_host") == "192.0.2.30"
    assert ceph.get("client.glance", "keyring") == "/etc/ceph/ceph.client.glance.keyring"
    shared = with_controller_settings(site, glance_store="file", glance_shared_path="/srv/glance")
    conf = ini(generate(shared, "ctl1", DeployFacts())["glance/glance-api.conf"])
    assert conf.get("file", "filesystem_store_datadir") == "/srv/glance"
    with pytest.raises(RoleConfigError, match=r"settings\.glance_shared_path"):
        generate(with_controller_settings(site, glance_store="file"), "ctl1", DeployFacts())
    local = generate(with_controller_settings(site), "ctl1", DeployFacts())[
        "glance/glance-api.conf"
    ]
    assert "NOT shared (set glance_store)" in local
