"""The role generators, on the example site: what each bundle must say."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from provisioner.inventory import Site, load_site
from provisioner.roles import DeployFacts, RoleConfigError, generate
from provisioner.roles.services import ident, vip_services
from tests.example_secrets import seed_example_secrets

REPO = Path(__file__).resolve().parents[3]
CONTROLLERS = ["ctl1", "ctl2", "ctl3"]
CTL_IPS = ["192.0.2.11", "192.0.2.12", "192.0.2.13"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """A copy of the example site with fixed secrets (never generated in the checkout)."""
    folder = tmp_path_factory.mktemp("example")
    shutil.copy(REPO / "examples" / "site.yaml", folder / "site.yaml")
    seed_example_secrets(folder / "secrets")
    return load_site(folder / "site.yaml")


def bootstraps(site: Site, node: str, facts: DeployFacts) -> bool:
    bundle = generate(site, node, facts)
    script = bundle["galera/galera-start.sh"]
    return "galera_new_cluster" in script.split("set -eu", 1)[1]


def test_first_deployment_bootstraps_exactly_one_galera_node(site: Site) -> None:
    first = DeployFacts(first_deployment=True)
    assert [n for n in CONTROLLERS if bootstraps(site, n, first)] == ["ctl1"]


def test_reprovisioned_controller_joins_and_never_bootstraps(site: Site) -> None:
    # ctl1 is the node that bootstrapped the cluster on its first deployment
    again = DeployFacts(first_deployment=False, running_members=("ctl2", "ctl3"))
    bundle = generate(site, "ctl1", again)
    assert not bootstraps(site, "ctl1", again)
    assert "systemctl start mariadb" in bundle["galera/galera-start.sh"]
    assert '"bootstrap": false' in bundle["galera/decision.json"]
    # even alone (no member running), a reprovisioned member never starts a new cluster
    assert not bootstraps(site, "ctl1", DeployFacts(first_deployment=False))
    # and a first-time node joining a running cluster does not bootstrap either
    assert not bootstraps(site, "ctl1", DeployFacts(True, running_members=("ctl2",)))


def test_galera_config_lists_every_controller(site: Site) -> None:
    for node in CONTROLLERS:
        cnf = generate(site, node, DeployFacts())["mysql/galera.cnf"]
        assert f"wsrep_cluster_address = gcomm://{','.join(CTL_IPS)}" in cnf
        assert f"wsrep_node_name = {node}" in cnf


def test_haproxy_fronts_every_api_on_the_vip_with_checked_backends(site: Site) -> None:
    cfg = generate(site, "ctl2", DeployFacts())["haproxy/haproxy.cfg"]
    for svc in vip_services():
        if svc.placement != "controller" or svc.ha != "haproxy" or svc.enabled_by:
            continue
        name = ident(svc.name)
        assert f"frontend {name}_api\n    bind 192.0.2.10:{svc.port}\n" in cfg
        backend = cfg.split(f"backend {name}_api_servers\n", 1)[1].split("\n\n", 1)[0]
        assert "option httpchk" in backend
        for ctl, ip in zip(CONTROLLERS, CTL_IPS, strict=True):
            assert f"server {ctl} {ip}:{svc.port} check" in backend
    assert {s.name for s in vip_services()} >= {
        *["keystone", "glance", "nova", "placement", "neutron", "cinder", "heat", "horizon"],
        *["nova-metadata", "novncproxy", "heat-cfn", "swift-proxy"],
    }
    swift = cfg.split("backend swift_proxy_api_servers\n", 1)[1].split("\n\n", 1)[0]
    assert "server sto1 192.0.2.16:8080 check" in swift


def test_keepalived_priorities_by_controller_and_unicast_peers(site: Site) -> None:
    priorities = {}
    for node, ip in zip(CONTROLLERS, CTL_IPS, strict=True):
        conf = generate(site, node, DeployFacts())["keepalived/keepalived.conf"]
        priorities[node] = int(re.search(r"priority (\d+)", conf).group(1))  # type: ignore[union-attr]
        peers = re.search(r"unicast_peer \{([^}]*)\}", conf).group(1).split()  # type: ignore[union-attr]
        assert sorted(peers) == [i for i in CTL_IPS if i != ip]
        assert f"unicast_src_ip {ip}" in conf
        assert "192.0.2.10/24 dev enp1s0" in conf  # the node's network.interface
    assert priorities["ctl1"] > priorities["ctl2"] > priorities["ctl3"]


def test_rabbitmq_cluster_with_quorum_queues(site: Site) -> None:
    bundle = generate(site, "ctl3", DeployFacts())
    conf = bundle["rabbitmq/rabbitmq.conf"]
    for i, ctl in enumerate(CONTROLLERS, 1):
        assert f"cluster_formation.classic_config.nodes.{i} = rabbit@{ctl}" in conf
    assert "cluster_partition_handling = pause_minority" in conf
    # the services declare quorum queues themselves (works with any RabbitMQ since 3.8)
    assert "rabbit_quorum_queue = true" in bundle["openstack/oslo-messaging.conf"]
    assert "default_queue_type" not in conf  # would stop RabbitMQ < 3.13 from starting
    newer = with_settings(site, "controller", {"rabbitmq_default_queue_type": "quorum"})
    assert (
        "default_queue_type = quorum"
        in generate(newer, "ctl3", DeployFacts())["rabbitmq/rabbitmq.conf"]
    )
    assert 'OPTIONS="-l 192.0.2.13 -U 0"' in bundle["memcached/memcached"]  # RHEL sysconfig


def test_network_bundle_l3_ha_and_dhcp_agents(site: Site) -> None:
    bundle = generate(site, "net1", DeployFacts())
    conf = bundle["neutron/neutron.conf.d/l3-ha.conf"]
    assert "l3_ha = true" in conf
    assert "max_l3_agents_per_router = 2" in conf  # two network nodes in the example
    assert "min_l3_agents_per_router" not in conf  # removed from Neutron
    assert "dhcp_agents_per_network = 2" in conf
    assert "nova_metadata_host = 192.0.2.10" in bundle["neutron/metadata_agent.ini"]


def test_storage_bundle_follows_the_cinder_backend_setting(site: Site) -> None:
    bundle = generate(site, "sto1", DeployFacts())
    assert "enabled_backends = lvm" in bundle["cinder/cinder.conf"]
    assert "volume_group = cinder-volumes" in bundle["cinder/cinder.conf"]
    script = bundle["storage/prepare-disks.sh"]
    assert "CINDER_LVM=1\nCEPH_OSD=0\nSWIFT=rest\n" in script  # the default plan of lvm
    assert "cinder.backup.drivers.swift.SwiftBackupDriver" in bundle["cinder/cinder.conf"]
    assert {"swift/object-server.conf", "swift/container-server.conf"} <= set(bundle)
    rbd = site.model_copy(
        update={
            "roles": {
                **site.roles,
                "storage": site.roles["storage"].model_copy(
                    update={"settings": {"cinder_backend": "rbd", "ceph_monitors": ["192.0.2.30"]}}
                ),
            }
        }
    )
    rbd_bundle = generate(rbd, "sto1", DeployFacts())
    assert "volume_driver = cinder.volume.drivers.rbd.RBDDriver" in rbd_bundle["cinder/cinder.conf"]
    assert (
        "backup_driver = cinder.backup.drivers.ceph.CephBackupDriver"
        in rbd_bundle["cinder/cinder.conf"]
    )
    ceph = rbd_bundle["ceph/ceph.conf"]
    assert "mon_host = 192.0.2.30\n" in ceph
    assert "keyring = /etc/ceph/ceph.client.cinder.keyring\n" in ceph
    assert "key =" not in ceph  # the key itself stays on the node
    assert "CINDER_LVM=0\nCEPH_OSD=rest\nSWIFT=1\n" in rbd_bundle["storage/prepare-disks.sh"]
    bad = rbd.model_copy(
        update={
            "roles": {
                **site.roles,
                "storage": site.roles["storage"].model_copy(
                    update={"settings": {"cinder_backend": "nfs"}}
                ),
            }
        }
    )
    with pytest.raises(
        RoleConfigError,
        match=r"node sto1: role storage settings\.cinder_backend: Input should be 'lvm' or 'rbd'",
    ):
        generate(bad, "sto1", DeployFacts())


def test_compute_points_at_the_controllers_vip(site: Site) -> None:
    bundle = generate(site, "cmp2", DeployFacts())
    nova = bundle["nova/nova-compute.conf"]
    assert "auth_url = http://192.0.2.10:5000" in nova
    assert "api_servers = http://192.0.2.10:9292" in nova
    assert "my_ip = 192.0.2.19" in nova
    l2 = bundle["neutron/neutron.conf.d/l2-agent.conf"]
    assert "www_authenticate_uri = http://192.0.2.10:5000" in l2
    assert all(f"openstack@{ip}:5672" in l2 for ip in CTL_IPS)


def test_full_rebuild_bootstraps_once_but_never_beside_a_running_member(site: Site) -> None:
    controller = site.roles["controller"]
    rebuilt = site.model_copy(
        update={
            "roles": {
                **site.roles,
                "controller": controller.model_copy(
                    update={"settings": {"galera_new_cluster": True}}
                ),
            }
        }
    )
    wiped = DeployFacts(first_deployment=False)
    assert [n for n in CONTROLLERS if bootstraps(rebuilt, n, wiped)] == ["ctl1"]
    assert not bootstraps(site, "ctl1", wiped)  # without the setting: never
    beside = DeployFacts(first_deployment=False, running_members=("ctl3",))
    assert not bootstraps(rebuilt, "ctl1", beside)


def test_no_secret_of_the_site_ends_up_in_a_bundle_or_the_inventory(site: Site) -> None:
    from provisioner.roles.kolla import multinode_inventory

    secrets_dir = site.base_dir / "secrets"
    secrets = [p.read_text().strip() for p in secrets_dir.iterdir() if p.name != "README.md"]
    assert secrets and all(len(s) >= 8 for s in secrets)
    texts = [multinode_inventory(site)]
    for node in site.nodes:
        texts += [
            text
            for rel, text in generate(site, node.name, DeployFacts()).items()
            if not rel.startswith("secrets/")
        ]
    for secret in secrets:
        assert not any(secret in text for text in texts)


def with_settings(site: Site, role: str, settings: dict[str, object]) -> Site:
    updated = site.roles[role].model_copy(update={"settings": settings})
    return site.model_copy(update={"roles": {**site.roles, role: updated}})


@pytest.mark.parametrize(
    ("role", "node", "settings", "field"),
    [
        ("controller", "ctl1", {"memcached_memory_mb": "lots"}, "memcached_memory_mb"),
        ("controller", "ctl2", {"vrrp_interface": "eth0; reboot"}, "vrrp_interface"),
        ("controller", "ctl3", {"pacemaker_services": ["ok.service", "x y"]}, "pacemaker_services"),
        ("network", "net1", {"dhcp_agents_per_network": 0}, "dhcp_agents_per_network"),
        ("storage", "sto2", {"os_disks": -1}, "os_disks"),
        ("compute", "cmp1", {"bridge_mappings": "physnet1"}, "bridge_mappings"),
    ],
)
def test_bad_role_settings_name_the_node_and_the_field(
    site: Site, role: str, node: str, settings: dict[str, object], field: str
) -> None:
    with pytest.raises(RoleConfigError, match=rf"{field}") as err:
        generate(with_settings(site, role, settings), node, DeployFacts())
    assert str(err.value).startswith(f"node {node}: role {role} settings.{field}")


def with_profile_family(site: Site, family: str) -> Site:
    profiles = {
        name: p.model_copy(update={"os_family": family}) for name, p in site.profiles.items()
    }
    return site.model_copy(update={"profiles": profiles})


@pytest.mark.parametrize(
    ("family", "provider", "memcached", "user"),
    [
        ("rhel", "/usr/lib64/galera/libgalera_smm.so", "memcached/memcached", 'USER="memcached"'),
        ("debian", "/usr/lib/galera/libgalera_smm.so", "memcached/memcached.conf", "-u memcache"),
    ],
)
def test_controller_files_follow_the_os_family_of_the_profile(
    site: Site, family: str, provider: str, memcached: str, user: str
) -> None:
    bundle = generate(with_profile_family(site, family), "ctl1", DeployFacts())
    assert f"wsrep_provider = {provider}\n" in bundle["mysql/galera.cnf"]
    assert user in bundle[memcached]
    other = {"memcached/memcached", "memcached/memcached.conf"} - {memcached}
    assert not other & set(bundle)
    # cinder-backup is no Pacemaker resource: it runs on every storage node (kolla agrees)
    assert 'class="systemd"' not in bundle["pacemaker/cib.xml"]
    assert "backup_driver = " in generate(site, "sto1", DeployFacts())["cinder/cinder.conf"]


def test_vrrp_interface_comes_from_the_node_never_a_guess(site: Site) -> None:
    from provisioner.inventory.models import Bond

    ctl = site.node("ctl2")
    bonded = ctl.model_copy(
        update={
            "network": ctl.network.model_copy(
                update={"bond": Bond(name="bond1", interfaces=["eno1", "eno2"]), "vlan": 20}
            )
        }
    )
    nodes = [bonded if n.name == "ctl2" else n for n in site.nodes]
    conf = generate(site.model_copy(update={"nodes": nodes}), "ctl2", DeployFacts())
    assert "interface bond1.20\n" in conf["keepalived/keepalived.conf"]
    bare = ctl.model_copy(update={"network": ctl.network.model_copy(update={"interface": None})})
    nodes = [bare if n.name == "ctl2" else n for n in site.nodes]
    with pytest.raises(RoleConfigError, match=r"node ctl2: no interface .*network.interface"):
        generate(site.model_copy(update={"nodes": nodes}), "ctl2", DeployFacts())
    # an operator's role-wide choice wins
    chosen = with_settings(site, "controller", {"vrrp_interface": "br-mgmt"})
    assert (
        "interface br-mgmt\n"
        in generate(chosen, "ctl2", DeployFacts())["keepalived/keepalived.conf"]
    )


def test_each_fence_device_has_its_own_password_script(site: Site) -> None:
    cib = generate(site, "ctl1", DeployFacts())["pacemaker/cib.xml"]
    scripts = re.findall(
        r'id="fence-(\w+)-password-script" name="password_script" value="([^"]+)"', cib
    )
    assert scripts == [(c, f"/etc/provisioner/fence/{c}.password") for c in CONTROLLERS]
    shared = with_settings(site, "controller", {"fence_password_script": "/etc/pw.sh"})
    # the example's controllers share one bmc.password reference: one script is right there
    assert "/etc/pw.sh" in generate(shared, "ctl1", DeployFacts())["pacemaker/cib.xml"]
    from provisioner.inventory.secrets import SecretRef

    own = site.node("ctl3").bmc.model_copy(update={"password": SecretRef(file="secrets/ctl3-bmc")})
    nodes = [n.model_copy(update={"bmc": own}) if n.name == "ctl3" else n for n in shared.nodes]
    with pytest.raises(RoleConfigError, match=r"fence_password_script .*put \{node\}"):
        generate(shared.model_copy(update={"nodes": nodes}), "ctl1", DeployFacts())


def test_ha_routers_vrrp_password_is_set_and_shared(site: Site) -> None:
    l3 = generate(site, "net1", DeployFacts())["neutron/l3_agent.ini"]
    assert "ha_vrrp_auth_type = PASS" in l3
    one = generate(site, "net1", DeployFacts())["secrets/neutron-l3-ha-vrrp.conf"]
    two = generate(site, "net2", DeployFacts())["secrets/neutron-l3-ha-vrrp.conf"]
    password = re.search(r"^ha_vrrp_auth_password = (\S{8,})$", one, re.M)
    assert password and one == two.replace("net2", "net1")
    stored = (site.base_dir / "secrets" / "neutron-l3-ha-vrrp-password").read_text().strip()
    assert password.group(1) == stored


def test_a_secret_in_a_bundle_is_stored_owner_only(site: Site, tmp_path: Path) -> None:
    from provisioner.roles.bundles import BundleStore

    path = BundleStore(tmp_path).write("net1", generate(site, "net1", DeployFacts()))
    secret = path / "secrets" / "neutron-l3-ha-vrrp.conf"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert secret.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    ("driver", "address", "port", "shown"),
    [
        ("redfish", "http://127.0.0.1:28801", None, "http://127.0.0.1:28801"),
        (
            "redfish",
            "https://bmc1.example.test",
            None,
            "https://bmc1.example.test:443",
        ),
        ("redfish", "http://10.0.0.5", None, "http://10.0.0.5:80"),
        ("redfish", "10.0.0.5", None, "10.0.0.5:443"),
        ("ipmi", "10.0.0.6", 6230, "10.0.0.6:6230"),
    ],
)
def test_bmc_location_never_appends_a_port_to_a_url(
    driver: str, address: str, port: int | None, shown: str
) -> None:
    from provisioner.inventory.models import Bmc

    bmc = Bmc.model_validate(
        {"driver": driver, "address": address, "port": port, "user": "u", "password": {"env": "X"}}
    )
    assert bmc.location == shown


def test_the_storage_bundle_counts_the_os_disks_of_the_storage_layout(site: Site) -> None:
    """The Swift ring data counts the data disks as the kickstart does: same OS disk count."""
    from provisioner.install.layouts import load_layout
    from provisioner.roles.storage import STORAGE_OS_DISKS

    assert load_layout(site.content_paths(), "storage").os_disks.count == STORAGE_OS_DISKS
