"""Network nodes run their own L2 agent and the L3 extensions (VPNaaS, FWaaS); Octavia is
rendered where the site places it, its API behind the VIP, its health managers on the
network nodes."""

from __future__ import annotations

import configparser
import shutil
from pathlib import Path

import pytest

from provisioner.inventory import Site, load_site
from provisioner.roles import DeployFacts, generate
from tests.example_secrets import seed_example_secrets

REPO = Path(__file__).resolve().parents[3]
NET_IPS = ["192.0.2.14", "192.0.2.15"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    folder = tmp_path_factory.mktemp("example")
    shutil.copy(REPO / "examples" / "site.yaml", folder / "site.yaml")
    seed_example_secrets(folder / "secrets")
    return load_site(folder / "site.yaml")


def ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(text)
    return parser


def placed(site: Site, **by_role: dict[str, object]) -> Site:
    roles = dict(site.roles)
    for name, settings in by_role.items():
        roles[name] = roles[name].model_copy(
            update={"settings": {**roles[name].settings, **settings}}
        )
    return site.model_copy(update={"roles": roles})


def test_network_nodes_have_their_own_ovs_agent_and_l3_extensions(site: Site) -> None:
    bundle = generate(site, "net2", DeployFacts())
    ovs = ini(bundle["neutron/openvswitch_agent.ini"])
    assert ovs.get("ovs", "local_ip") == "192.0.2.15"
    assert ovs.get("ovs", "bridge_mappings") == "physnet1:br-ex"
    l2 = ini(bundle["neutron/neutron.conf.d/l2-agent.conf"])
    assert l2.get("DEFAULT", "transport_url").count("openstack@") == 3
    l3 = ini(bundle["neutron/l3_agent.ini"])
    assert l3.get("agent", "extensions") == "vpnaas,fwaas_v2"
    assert l3.get("fwaas", "driver") == "iptables_v2"
    assert l3.get("vpnagent", "vpn_device_driver").endswith("LibreSwanDriver")  # RHEL profile
    server = generate(site, "ctl1", DeployFacts())
    neutron = ini(server["neutron/neutron.conf"])
    assert neutron.get("DEFAULT", "service_plugins") == "router,vpnaas,firewall_v2"
    providers = server["neutron/neutron.conf.d/service-providers.conf"]
    assert "service_provider = VPN:" in providers and "service_provider = FIREWALL_V2:" in providers


def test_extensions_switched_off_leave_no_trace(site: Site) -> None:
    off = placed(site, network={"vpnaas": False, "fwaas": False})
    l3 = ini(generate(off, "net1", DeployFacts())["neutron/l3_agent.ini"])
    assert not l3.has_section("agent") and not l3.has_section("fwaas")
    neutron = ini(generate(off, "ctl1", DeployFacts())["neutron/neutron.conf"])
    assert neutron.get("DEFAULT", "service_plugins") == "router"


def test_octavia_only_where_placed_api_behind_the_vip(site: Site) -> None:
    assert "octavia/octavia.conf" not in generate(site, "ctl1", DeployFacts())
    assert "octavia/octavia-health-manager.conf" not in generate(site, "net1", DeployFacts())
    both = placed(site, controller={"octavia": True}, network={"octavia_health_manager": True})
    ctl = generate(both, "ctl2", DeployFacts())
    octavia = ini(ctl["octavia/octavia.conf"])
    assert octavia.get("api_settings", "bind_host") == "192.0.2.12"
    heartbeats = [f"{ip}:5555" for ip in NET_IPS]
    assert octavia.get("health_manager", "controller_ip_port_list") == ",".join(heartbeats)
    assert "frontend octavia_api\n    bind 192.0.2.10:9876\n" in ctl["haproxy/haproxy.cfg"]
    hm = ini(generate(both, "net2", DeployFacts())["octavia/octavia-health-manager.conf"])
    assert hm.get("health_manager", "bind_ip") == "192.0.2.15"
    assert hm.get("health_manager", "controller_ip_port_list") == ",".join(heartbeats)
