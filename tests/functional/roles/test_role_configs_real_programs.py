"""Every generated config, read by the program that will run it on the node."""

from __future__ import annotations

import pwd
import re
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.inventory import Site
from provisioner.roles import DeployFacts, generate
from tests.functional.roles.conftest import needs_root, netns, run

pytestmark = pytest.mark.functional
CONTROLLERS = ["ctl1", "ctl2", "ctl3"]


def write(tmp_path: Path, node: str, rel: str, text: str) -> Path:
    path = tmp_path / node / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("node", CONTROLLERS)
def test_haproxy_accepts_the_config(lab_site: Site, tmp_path: Path, node: str) -> None:
    cfg = write(
        tmp_path,
        node,
        "haproxy.cfg",
        generate(lab_site, node, DeployFacts())["haproxy/haproxy.cfg"],
    )
    result = run(["haproxy", "-c", "-f", str(cfg)])
    assert "Configuration file is valid" in result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr


def test_haproxy_check_catches_a_broken_config(lab_site: Site, tmp_path: Path) -> None:
    text = generate(lab_site, "ctl1", DeployFacts())["haproxy/haproxy.cfg"]
    cfg = write(tmp_path, "ctl1", "haproxy.cfg", text.replace("balance roundrobin", "balance x"))
    assert run(["haproxy", "-c", "-f", str(cfg)], check=False).returncode != 0


@needs_root
@pytest.mark.parametrize("node", CONTROLLERS)
def test_keepalived_accepts_the_config(lab_site: Site, tmp_path: Path, node: str) -> None:
    text = generate(lab_site, node, DeployFacts())["keepalived/keepalived.conf"]
    conf = write(tmp_path, node, "keepalived.conf", text)
    broken = write(tmp_path, node, "broken.conf", text.replace("priority", "priorty"))
    with netns() as ns:  # keepalived checks that the VRRP interface exists
        run(["ip", "-n", ns, "link", "add", "pv7eth", "type", "veth", "peer", "name", "pv7peer"])
        check = ["ip", "netns", "exec", ns, "keepalived", "--config-test", "-f"]
        result = run([*check, str(conf)], check=False)
        assert result.returncode == 0, result.stderr
        assert run([*check, str(broken)], check=False).returncode != 0


@pytest.mark.parametrize("node", CONTROLLERS)
def test_mariadb_reads_the_galera_config(lab_site: Site, tmp_path: Path, node: str) -> None:
    text = generate(lab_site, node, DeployFacts())["mysql/galera.cnf"]
    cnf = write(tmp_path, node, "galera.cnf", text)
    result = run(["mariadbd", f"--defaults-file={cnf}", "--help", "--verbose"])
    settings = dict(
        re.findall(r"^(wsrep-[a-z-]+|bind-address|binlog-format)[ \t]+(\S.*)$", result.stdout, re.M)
    )
    assert settings["wsrep-cluster-address"] == "gcomm://203.0.113.11,203.0.113.12,203.0.113.13"
    assert settings["wsrep-node-name"] == node
    assert settings["wsrep-on"] == "TRUE"
    assert settings["binlog-format"] == "ROW"
    # the same reader rejects a misspelt option, so a passing read means something
    bad = write(tmp_path, node, "bad.cnf", text.replace("wsrep_on", "wsrep_onn"))
    rejected = run(["mariadbd", f"--defaults-file={bad}", "--help", "--verbose"], check=False)
    assert rejected.returncode != 0
    assert "unknown variable 'wsrep_onn=ON'" in rejected.stderr


@needs_root
@pytest.mark.parametrize("node", CONTROLLERS)
def test_corosync_accepts_the_config(lab_site_dir: Path, lab_site: Site, node: str) -> None:
    # the cluster key is a secret installed on the node separately; make one for the check
    run(["corosync-keygen", "-k", str(lab_site_dir / "corosync-authkey")])
    text = generate(lab_site, node, DeployFacts())["corosync/corosync.conf"]
    conf = write(lab_site_dir, node, "corosync.conf", text)
    ip = str(lab_site.node(node).ip)
    with netns() as ns:  # corosync -t looks for its own node by the host's addresses
        run(["ip", "-n", ns, "addr", "add", f"{ip}/32", "dev", "lo"])
        result = run(["ip", "netns", "exec", ns, "corosync", "-t", "-c", str(conf)], check=False)
        assert result.returncode == 0, result.stderr
        stranger = write(
            lab_site_dir, node, "other.conf", text.replace(f"{ip}\n", "203.0.113.99\n")
        )
        assert (
            run(
                ["ip", "netns", "exec", ns, "corosync", "-t", "-c", str(stranger)], check=False
            ).returncode
            != 0
        )


def _as_running_cluster(cib: str, nodes: list[str]) -> str:
    """The CIB as a DC would hold it: quorum and every controller online (status only)."""
    states = "".join(
        f'<node_state id="{i}" uname="{n}" in_ccm="true" crmd="online" join="member" '
        f'expected="member"/>'
        for i, n in enumerate(nodes, 1)
    )
    cib = cib.replace("<cib ", '<cib have-quorum="1" dc-uuid="1" ', 1)
    return cib.replace("<status/>", f"<status>{states}</status>")


def test_crm_verify_accepts_the_pacemaker_cib(lab_site: Site, tmp_path: Path) -> None:
    roles = dict(lab_site.roles)  # a site's own unit without native HA, run by Pacemaker
    ctl = roles["controller"]
    settings = {**ctl.settings, "pacemaker_services": ["openstack-aodh-evaluator"]}
    roles["controller"] = ctl.model_copy(update={"settings": settings})
    site = lab_site.model_copy(update={"roles": roles})
    text = generate(site, "ctl1", DeployFacts())["pacemaker/cib.xml"]
    cib = write(tmp_path, "ctl1", "cib.xml", _as_running_cluster(text, CONTROLLERS))
    result = run(["crm_verify", "--xml-file", str(cib), "-V"], check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'type="fence_ipmilan"' in text and 'type="openstack-aodh-evaluator"' in text
    broken = write(
        tmp_path,
        "ctl1",
        "broken.xml",
        _as_running_cluster(text.replace('class="systemd"', 'class="nosuchclass"'), CONTROLLERS),
    )
    assert run(["crm_verify", "--xml-file", str(broken)], check=False).returncode != 0


def test_fence_devices_use_the_agent_of_each_bmc_and_only_its_parameters(
    lab_site: Site, tmp_path: Path
) -> None:
    """ctl2 gets a Redfish BMC: its device is fence_redfish (TLS, certificate unchecked as
    its bmc says), the others fence_ipmilan; every attribute is one the installed agent's
    metadata declares, and crm_verify accepts the CIB."""
    nodes = [
        n.model_copy(
            update={
                "bmc": n.bmc.model_copy(
                    update={
                        "driver": "redfish",
                        "address": "https://bmc-ctl2.example.test:8443",
                        "port": None,
                        "verify_tls": False,
                    }
                )
            }
        )
        if n.name == "ctl2"
        else n
        for n in lab_site.nodes
    ]
    site = lab_site.model_copy(update={"nodes": nodes})
    text = generate(site, "ctl1", DeployFacts())["pacemaker/cib.xml"]
    devices = dict(re.findall(r'<primitive id="fence-(\w+)" class="stonith" type="(\w+)"', text))
    assert devices == {"ctl1": "fence_ipmilan", "ctl2": "fence_redfish", "ctl3": "fence_ipmilan"}
    for node, agent in devices.items():
        declared = set(
            re.findall(r'<parameter name="(\w+)"', run([agent, "-o", "metadata"]).stdout)
        )
        used = re.findall(rf'id="fence-{node}-[\w-]+" name="(\w+)" value="([^"]*)"', text)
        # pcmk_* are the fencer's own attributes; the rest go to the agent
        agent_params = {name for name, _ in used if not name.startswith("pcmk_")}
        assert agent_params <= declared, (agent, used)
        if agent == "fence_redfish":
            assert dict(used) | {"password_script": ""} == {
                "ip": "bmc-ctl2.example.test",
                "ipport": "8443",
                "username": "admin",
                "password_script": "",
                "ssl": "1",
                "ssl_insecure": "1",
                "pcmk_host_list": "ctl2",
            }
    cib = write(tmp_path, "ctl1", "cib.xml", _as_running_cluster(text, CONTROLLERS))
    result = run(["crm_verify", "--xml-file", str(cib), "-V"], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


APACHE_MAIN = """ServerRoot {root}
ServerName {node}
LoadModule mpm_event_module {mpm}
PidFile {root}/apache2.pid
ErrorLog {root}/error.log
Include {listen}
"""


@pytest.mark.parametrize("node", CONTROLLERS)
def test_apache_accepts_the_wsgi_listen_lines(lab_site: Site, tmp_path: Path, node: str) -> None:
    """The web server's own syntax check (apache2 -t) over the Listen file: an address it
    cannot parse, or the same address:port twice, fails it."""
    for name in ("apache2", "mod_mpm_event.so"):
        if programs.find(name) is None:
            pytest.skip(f"not installed: {programs.entry(name).package}")
    text = generate(lab_site, node, DeployFacts())["apache/openstack-listen.conf"]
    listen = write(tmp_path, node, "openstack-listen.conf", text)

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        main = path.parent / "apache2.conf"
        main.write_text(
            APACHE_MAIN.format(
                root=path.parent, node=node, mpm=programs.path("mod_mpm_event.so"), listen=path
            )
        )
        return run(["apache2", "-t", "-f", str(main)], check=False)

    result = check(listen)
    assert result.returncode == 0, result.stderr
    assert "Syntax OK" in result.stderr
    first = text.splitlines()[-1]
    twice = write(tmp_path, f"{node}-twice", "openstack-listen.conf", f"{text}{first}\n")
    assert "Cannot define multiple Listeners" in check(twice).stderr


def memcached_command(lab_site: Site, family: str, tmp_path: Path) -> list[str]:
    """memcached's command line as each family's packaging builds it from the bundle's file:
    Debian's init reads /etc/memcached.conf (one option a line), RHEL's memcached.service
    runs ``memcached -p $PORT -u $USER -m $CACHESIZE -c $MAXCONN $OPTIONS`` from sysconfig."""
    profiles = {n: p.model_copy(update={"os_family": family}) for n, p in lab_site.profiles.items()}
    bundle = generate(lab_site.model_copy(update={"profiles": profiles}), "ctl2", DeployFacts())
    if family == "debian":
        text = bundle["memcached/memcached.conf"]
        options = [line for line in text.splitlines() if line.startswith("-") and line != "-d"]
        return " ".join(options).split()
    sysconfig = write(tmp_path, "ctl2", "sysconfig-memcached", bundle["memcached/memcached"])
    shell = f'. {sysconfig}; echo -p "$PORT" -u "$USER" -m "$CACHESIZE" -c "$MAXCONN" $OPTIONS'
    return run(["sh", "-c", shell]).stdout.split()


@needs_root
@pytest.mark.parametrize("family", ["debian", "rhel"])
def test_memcached_runs_with_the_generated_options(
    lab_site: Site, tmp_path: Path, family: str
) -> None:
    options = memcached_command(lab_site, family, tmp_path)
    user = options[options.index("-u") + 1]
    try:
        pwd.getpwnam(user)
    except KeyError:  # this host's (Debian) package made "memcache"; RHEL's makes "memcached"
        options[options.index("-u") + 1] = "memcache"
    with netns() as ns:
        run(["ip", "-n", ns, "addr", "add", "203.0.113.12/32", "dev", "lo"])
        proc = subprocess.Popen(
            programs.command(["ip", "netns", "exec", ns, "memcached", *options]),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            probe = (
                "import socket,time\n"
                "for _ in range(100):\n"
                "    try:\n"
                "        s = socket.create_connection(('203.0.113.12', 11211), timeout=2); break\n"
                "    except OSError: time.sleep(0.1)\n"
                "s.sendall(b'set k 0 0 2\\r\\nok\\r\\nget k\\r\\n'); time.sleep(0.5)\n"
                "print(s.recv(4096).decode())\n"
            )
            result = run(["ip", "netns", "exec", ns, sys.executable, "-c", probe])
            assert "STORED" in result.stdout and "VALUE k 0 2" in result.stdout
        finally:
            proc.terminate()
            proc.wait(timeout=15)


@pytest.mark.parametrize(
    ("node", "script"),
    [
        ("ctl1", "galera/galera-start.sh"),
        ("ctl2", "galera/galera-start.sh"),
        ("sto1", "storage/prepare-disks.sh"),
    ],
)
def test_generated_scripts_parse_as_shell(
    lab_site: Site, tmp_path: Path, node: str, script: str
) -> None:
    text = generate(lab_site, node, DeployFacts())[script]
    assert text.startswith("#!/bin/sh\n")
    path = write(tmp_path, node, Path(script).name, text)
    run(["sh", "-n", str(path)])
    assert (
        run(
            ["sh", "-n", str(write(tmp_path, node, "bad.sh", text + "\nif then\n"))], check=False
        ).returncode
        != 0
    )
