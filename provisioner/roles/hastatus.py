"""`provisioner ha status`: what an operator checks first about the controllers' HA layer.

One read-only probe per controller over SSH (system ssh, key auth, as the bundle push
does): which node holds the VIP, HAProxy's view of every backend (its stats socket),
Galera's cluster size and state, RabbitMQ's running nodes and partitions, Pacemaker's
online nodes and fence resources, and which API packages are installed. Parsing is
pure (``parse_probe``, ``summarize``): the tests feed it the programs' real output.

A backend HAProxy reports down on a node where its service's package is not installed
is "no service installed", never "up" and never a failure to chase: the lab runs only
Keystone of the OpenStack APIs, and the other frontends are configured all the same.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from provisioner import programs
from provisioner.inventory import Node, Site
from provisioner.roles.common import controller_vip, controllers
from provisioner.roles.delivery import SshPush

#: the Debian package that provides each service behind the VIP (installed or not)
PACKAGES: dict[str, str] = {
    "keystone": "keystone",
    "glance": "glance-api",
    "nova": "nova-api",
    "nova-metadata": "nova-api",
    "placement": "placement-api",
    "novncproxy": "nova-novncproxy",
    "neutron": "neutron-server",
    "cinder": "cinder-api",
    "heat": "heat-api",
    "heat-cfn": "heat-api-cfn",
    "horizon": "openstack-dashboard",
    "swift-proxy": "swift-proxy",
    "octavia": "octavia-api",
    "galera": "mariadb-server",
}

NO_SERVICE = "no service installed"
GALERA_FACTS = ("wsrep_cluster_size", "wsrep_cluster_status", "wsrep_local_state_comment")

#: run as root on each controller; one "== section" per fact, nothing changed
PROBE = r"""
echo "== vip"; ip -4 -o addr show | awk '{print $4}'
echo "== haproxy"
echo "show stat" | socat -t 5 stdio UNIX-CONNECT:/run/haproxy/admin.sock 2>/dev/null
echo "== galera"
mysql -NBe "SHOW STATUS LIKE 'wsrep_%'" 2>/dev/null
echo "== rabbitmq"; rabbitmqctl -q cluster_status --formatter json 2>/dev/null
echo "== pacemaker"; crm_mon -1 -r 2>/dev/null
echo "== crm_node"; crm_node -l 2>/dev/null
echo "== packages"
dpkg-query -W -f '${Package} ${db:Status-Status}\n' PACKAGES 2>/dev/null
echo "== end"
"""


@dataclass
class NodeProbe:
    node: str
    reachable: bool = True
    error: str = ""
    addresses: list[str] = field(default_factory=list)
    #: (frontend service, server node) -> HAProxy's status (UP, DOWN, ...)
    backends: dict[tuple[str, str], str] = field(default_factory=dict)
    galera: dict[str, str] = field(default_factory=dict)
    rabbit_running: list[str] = field(default_factory=list)
    rabbit_partitions: list[str] = field(default_factory=list)
    pcmk_online: list[str] = field(default_factory=list)
    pcmk_offline: list[str] = field(default_factory=list)
    fence: dict[str, str] = field(default_factory=dict)  # fence resource -> state
    installed: set[str] = field(default_factory=set)  # Debian packages installed


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("== "):
            current = line[3:].strip()
            out[current] = []
        elif current:
            out[current].append(line)
    return out


def _rabbit(lines: list[str]) -> tuple[list[str], list[str]]:
    """Running nodes and partitions from ``rabbitmqctl cluster_status --formatter json``
    (its text form is decorated with terminal escapes even without a terminal).
    A partition reads "rabbit@a: rabbit@b, ...": the nodes ``a`` cannot reach."""
    try:
        data = json.loads("\n".join(lines) or "{}")
    except json.JSONDecodeError:
        return [], []
    if not isinstance(data, dict):
        return [], []
    running = [str(n) for n in data.get("running_nodes") or [] if isinstance(n, str)]
    split = data.get("partitions") or {}
    partitions = (
        [f"{node}: {', '.join(map(str, peers))}" for node, peers in sorted(split.items()) if peers]
        if isinstance(split, dict)
        else []
    )
    return running, partitions


def parse_probe(node: str, text: str) -> NodeProbe:
    """One controller's probe output as facts."""
    sec = _sections(text)
    probe = NodeProbe(node)
    if "end" not in sec:
        probe.reachable, probe.error = False, "probe output incomplete"
    probe.addresses = [a.split("/")[0] for a in sec.get("vip", []) if a.strip()]
    rows = [r for r in sec.get("haproxy", []) if r.strip()]
    if rows and rows[0].startswith("# "):
        reader = csv.DictReader(io.StringIO("\n".join([rows[0][2:], *rows[1:]])))
        for row in reader:
            server = row.get("svname", "")
            if server in ("FRONTEND", "BACKEND", ""):
                continue
            proxy = row.get("pxname", "").removesuffix("_api_servers")
            probe.backends[(proxy.replace("_", "-"), server)] = row.get("status", "")
    for line in sec.get("galera", []):
        parts = line.split("\t")
        if len(parts) == 2 and parts[0] in GALERA_FACTS:
            probe.galera[parts[0]] = parts[1]
    probe.rabbit_running, probe.rabbit_partitions = _rabbit(sec.get("rabbitmq", []))
    for line in sec.get("pacemaker", []):
        text_line = line.strip().lstrip("* ").strip()
        if text_line.startswith("Online: ["):
            probe.pcmk_online = text_line.split("[", 1)[1].rstrip("] ").split()
        elif text_line.startswith("OFFLINE: ["):
            probe.pcmk_offline = text_line.split("[", 1)[1].rstrip("] ").split()
        elif "(stonith:" in text_line:
            name, _, rest = text_line.partition("(stonith:")
            state = rest.partition(")")[2].lstrip(": \t").strip()
            probe.fence[name.strip()] = " ".join(state.split()) or "?"
    # Pacemaker's own node list ("ID NAME STATE"), present without pacemaker-cli-utils
    known = [line.split() for line in sec.get("crm_node", []) if len(line.split()) == 3]
    if known:
        probe.pcmk_online = [name for _, name, state in known if state == "member"]
        probe.pcmk_offline = [name for _, name, state in known if state != "member"]
    for line in sec.get("packages", []):
        parts = line.split()
        if len(parts) == 2 and parts[1] == "installed":
            probe.installed.add(parts[0])
    return probe


@dataclass
class HaStatus:
    controllers: list[str]
    vip: str
    vip_holders: list[str]
    #: service -> server node -> "up" | "down" | NO_SERVICE | "unknown"
    backends: dict[str, dict[str, str]]
    galera: dict[str, dict[str, str]]
    rabbitmq: dict[str, dict[str, list[str]]]
    pacemaker: dict[str, dict[str, Any]]
    unreachable: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def healthy(self) -> bool:
        """One VIP holder, Galera and RabbitMQ whole, every Pacemaker node online, every
        installed backend up (a backend without its service is not counted)."""
        n = len(self.controllers)
        return (
            len(self.vip_holders) == 1
            and not self.unreachable
            and all(
                g.get("wsrep_cluster_size") == str(n) and g.get("wsrep_cluster_status") == "Primary"
                for g in self.galera.values()
            )
            and all(len(r["running"]) == n and not r["partitions"] for r in self.rabbitmq.values())
            and all(not p["offline"] for p in self.pacemaker.values())
            and all(s in ("up", NO_SERVICE) for b in self.backends.values() for s in b.values())
        )


def summarize(site: Site, probes: list[NodeProbe]) -> HaStatus:
    vip = str(controller_vip(site))
    up = [p for p in probes if p.reachable]
    holders = [p.node for p in up if vip in p.addresses]
    # HAProxy's view from the VIP holder (every controller checks the same backends)
    view = next((p for p in up if p.node in holders), up[0] if up else None)
    installed = {p.node: p.installed for p in up}
    backends: dict[str, dict[str, str]] = {}
    for (svc, server), status in sorted((view.backends if view else {}).items()):
        package = PACKAGES.get(svc)
        on_server = installed.get(server)
        if package and on_server is not None and package not in on_server:
            state = NO_SERVICE  # whatever HAProxy says (a fresh HAProxy starts servers UP)
        elif status.startswith("UP"):
            state = "up"
        elif status.startswith(("DOWN", "MAINT", "NOLB")):
            state = "down"
        else:
            state = "unknown"
        backends.setdefault(svc, {})[server] = state
    return HaStatus(
        controllers=[c.name for c in controllers(site)],
        vip=vip,
        vip_holders=holders,
        backends=backends,
        galera={p.node: p.galera for p in up},
        rabbitmq={
            p.node: {"running": p.rabbit_running, "partitions": p.rabbit_partitions} for p in up
        },
        pacemaker={
            p.node: {"online": p.pcmk_online, "offline": p.pcmk_offline, "fence": p.fence}
            for p in up
        },
        unreachable={p.node: p.error for p in probes if not p.reachable},
    )


def probe_script() -> str:
    return PROBE.replace("PACKAGES", " ".join(sorted(set(PACKAGES.values()))))


def collect(
    site: Site, ssh: SshPush, user: str = "root", runner: Callable[..., Any] = subprocess.run
) -> HaStatus:
    """Probe every controller over SSH, all at once (a dead one costs one timeout, not
    one each), and summarize."""

    def probe(node: Node) -> NodeProbe:
        cmd = ssh.ssh_command(f"{user}@{node.ip}", probe_script())
        try:
            done = runner(
                programs.command(cmd), capture_output=True, text=True, timeout=ssh.timeout_s
            )
        except subprocess.TimeoutExpired:
            return NodeProbe(node.name, reachable=False, error=f"no answer in {ssh.timeout_s:g} s")
        except OSError as exc:
            return NodeProbe(node.name, reachable=False, error=str(exc)[:200])
        if done.returncode == 255:  # ssh itself failed: the node is down or refuses us
            last = (done.stderr.strip().splitlines() or ["ssh failed"])[-1]
            return NodeProbe(node.name, reachable=False, error=last[:200])
        return parse_probe(node.name, done.stdout)

    nodes = controllers(site)
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        probes = list(pool.map(probe, nodes))
    return summarize(site, probes)


def render_text(status: HaStatus) -> str:
    """The table an operator reads."""
    lines = [f"VIP {status.vip}: held by {', '.join(status.vip_holders) or 'NOBODY'}"]
    for node, why in status.unreachable.items():
        lines.append(f"{node}: unreachable ({why})")
    lines.append("HAProxy backends:")
    for svc, servers in status.backends.items():
        shown = ", ".join(f"{n} {s}" for n, s in servers.items())
        lines.append(f"  {svc:<14} {shown}")
    lines.append("Galera:")
    for node, g in status.galera.items():
        lines.append(
            f"  {node}: size {g.get('wsrep_cluster_size', '?')}, "
            f"{g.get('wsrep_cluster_status', '?')}, {g.get('wsrep_local_state_comment', '?')}"
        )
    lines.append("RabbitMQ:")
    for node, r in status.rabbitmq.items():
        parts = ", ".join(r["partitions"]) or "none"
        lines.append(f"  {node}: running {' '.join(r['running']) or '-'}; partitions {parts}")
    lines.append("Pacemaker:")
    for node, p in status.pacemaker.items():
        fence = ", ".join(f"{k} {v}" for k, v in p["fence"].items()) or "no fence devices"
        lines.append(
            f"  {node}: online {' '.join(p['online']) or '-'}; "
            f"offline {' '.join(p['offline']) or 'none'}; {fence}"
        )
    lines.append(f"healthy: {'yes' if status.healthy else 'no'}")
    return "\n".join(lines)


__all__ = ["NO_SERVICE", "HaStatus", "collect", "parse_probe", "render_text", "summarize"]
