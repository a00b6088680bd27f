"""Every port a generated configuration sends to the VIP has a HAProxy frontend there.

Derived from the rendered files of every node of every role (URLs, host:port pairs and
ini ``*_host``/``*_port`` pairs naming a VIP address or name), never from a list of ports.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from provisioner.inventory import Site, load_site
from provisioner.roles import DeployFacts, generate
from tests.example_secrets import seed_example_secrets

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    folder = tmp_path_factory.mktemp("example")
    shutil.copy(REPO / "examples" / "site.yaml", folder / "site.yaml")
    seed_example_secrets(folder / "secrets")
    return load_site(folder / "site.yaml")


def vip_names(site: Site) -> dict[str, str]:
    """Every spelling of a VIP (address, name, alias, their FQDNs) -> its address."""
    domain = site.site.domain.rstrip(".")
    names: dict[str, str] = {}
    for role in site.roles.values():
        for vip in role.ha.vips:
            for name in [str(vip.address), vip.name, *vip.aliases]:
                names[name] = str(vip.address)
                if not name[0].isdigit():
                    names[f"{name}.{domain}"] = str(vip.address)
    return names


def vip_targets(text: str, names: dict[str, str]) -> set[tuple[str, int]]:
    """(VIP address, port) of every place ``text`` sends traffic to a VIP."""
    spelled = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    found: set[tuple[str, int]] = set()
    for scheme, host, port in re.findall(
        rf"(?:(https?)://)?(?<![\w.-])({spelled})(?::(\d+))?(?![\w.-])", text
    ):
        if port:
            found.add((names[host], int(port)))
        elif scheme:
            found.add((names[host], 443 if scheme == "https" else 80))
    for key, host in re.findall(rf"^\s*(\w+)_host\s*=\s*({spelled})\s*$", text, re.M):
        port_line = re.search(rf"^\s*{key}_port\s*=\s*(\d+)\s*$", text, re.M)
        assert port_line, f"{key}_host names a VIP but {key}_port is not set"
        found.add((names[host], int(port_line.group(1))))
    return found


def rendered_files(site: Site) -> dict[tuple[str, str], str]:
    return {
        (node.name, rel): text
        for node in site.nodes
        for rel, text in generate(site, node.name, DeployFacts()).items()
    }


def haproxy_binds(site: Site) -> set[tuple[str, int]]:
    binds: set[tuple[str, int]] = set()
    for node in site.nodes_of_kind("controller"):
        cfg = generate(site, node.name, DeployFacts())["haproxy/haproxy.cfg"]
        for addr, port in re.findall(r"^\s*bind (\S+):(\d+)\s*$", cfg, re.M):
            binds.add((addr, int(port)))
    return binds


def test_every_port_sent_to_the_vip_has_a_frontend(site: Site) -> None:
    names = vip_names(site)
    binds = haproxy_binds(site)
    missing = []
    for (node, rel), text in rendered_files(site).items():
        if rel == "haproxy/haproxy.cfg":
            continue
        for target in vip_targets(text, names):
            if target not in binds:
                missing.append(f"{node}:{rel} -> {target[0]}:{target[1]}")
    assert not missing, "no HAProxy frontend for:\n" + "\n".join(missing)


def test_the_scan_finds_what_the_clients_send_to_the_vip(site: Site) -> None:
    """The scanner sees the ports the issue found missing (so a pass above means something)."""
    names = vip_names(site)
    seen = set()
    for text in rendered_files(site).values():
        seen |= {port for _addr, port in vip_targets(text, names)}
    assert {5000, 9292, 8775, 6080} <= seen
    assert vip_targets("url = http://api.lab.example.test:8000/v1", names) == {("192.0.2.10", 8000)}
    assert vip_targets("x = https://keystone/v3", names) == {("192.0.2.10", 443)}
    assert vip_targets("nova_metadata_host = 192.0.2.10\nnova_metadata_port = 1", names) == {
        ("192.0.2.10", 1)
    }
    assert vip_targets("bind = 192.0.2.100:80", names) == set()


def test_services_of_the_table_behind_the_vip_each_have_a_frontend(site: Site) -> None:
    from provisioner.roles.services import vip_services

    binds = haproxy_binds(site)
    placed = {("192.0.2.10", s.port) for s in vip_services() if not s.enabled_by}
    assert placed <= binds
    assert {8775, 6080, 8000, 8080} <= {port for _addr, port in binds}
    # a service the site does not place (Octavia) has no frontend until it does
    assert ("192.0.2.10", 9876) not in binds
