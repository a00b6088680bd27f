"""The one table of the cloud's services: name, port, where they run and how they are HA.

HAProxy's frontends on the controllers' VIP and every URL a generated
configuration sends to the VIP are both rendered from this table (templates
get ``url.<service>`` and ``port.<service>``), so a service cannot be reached
through the VIP without a frontend there: the class of defect where a client
config named a port HAProxy did not listen on (nova-metadata, noVNC, heat-cfn,
the Swift proxy) cannot come back by adding a URL to a template.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Literal

#: how a service survives the loss of a node
HaMechanism = Literal[
    "haproxy",  # active/active behind HAProxy on the keepalived VIP
    "haproxy-one-writer",  # behind HAProxy, one server active and the others backup (Galera)
    "cluster",  # native clustering, clients list every member (RabbitMQ, memcached)
    "pacemaker",  # no native HA: one instance at a time, moved by Pacemaker
    "agents",  # several agents scheduled per resource (Neutron L3 HA, DHCP agents)
    "replication",  # data replicated across nodes (Swift, Ceph)
    "per-node",  # bound to the node (Cinder LVM, nova-compute)
]


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    #: role kind of the nodes that run the service (HAProxy's backends)
    placement: str
    ha: HaMechanism
    #: HTTP health check path; "" for a TCP check (mode tcp)
    check: str = ""
    #: URL path clients append to the base URL ("/v3" for keystone's auth_url, ...)
    path: str = ""
    #: run by the web server (WSGI): it listens on the node's address there, not in the
    #: service's own file (nova, neutron, glance, heat no longer have bind options)
    wsgi: bool = False
    #: the controller setting that places the service ("" = always there)
    enabled_by: str = ""

    @property
    def behind_vip(self) -> bool:
        return self.ha in ("haproxy", "haproxy-one-writer")

    @property
    def mode(self) -> str:
        return "http" if self.check else "tcp"


SERVICES: tuple[Service, ...] = (
    Service("keystone", 5000, "controller", "haproxy", "/v3", wsgi=True),
    Service("glance", 9292, "controller", "haproxy", "/healthcheck", wsgi=True),
    Service("nova", 8774, "controller", "haproxy", "/", wsgi=True),
    Service("nova-metadata", 8775, "controller", "haproxy", "/", wsgi=True),
    Service("placement", 8778, "controller", "haproxy", "/", wsgi=True),
    Service("novncproxy", 6080, "controller", "haproxy", "/vnc_auto.html"),
    Service("neutron", 9696, "controller", "haproxy", "/", wsgi=True),
    Service("cinder", 8776, "controller", "haproxy", "/healthcheck", wsgi=True),
    Service("heat", 8004, "controller", "haproxy", "/healthcheck", wsgi=True),
    Service("heat-cfn", 8000, "controller", "haproxy", "/healthcheck", wsgi=True),
    Service("horizon", 80, "controller", "haproxy", "/dashboard/auth/login/", wsgi=True),
    Service("swift-proxy", 8080, "storage", "haproxy", "/healthcheck"),
    Service("octavia", 9876, "controller", "haproxy", "/", enabled_by="octavia"),
    # amphorae send heartbeats (UDP) to every health manager listed
    Service("octavia-health-manager", 5555, "network", "cluster", enabled_by="octavia"),
    Service("galera", 3306, "controller", "haproxy-one-writer"),
    Service("swift-account", 6202, "storage", "replication"),
    Service("swift-container", 6201, "storage", "replication"),
    Service("swift-object", 6200, "storage", "replication"),
    Service("rabbitmq", 5672, "controller", "cluster"),
    Service("memcached", 11211, "controller", "cluster"),
)

BY_NAME: dict[str, Service] = {s.name: s for s in SERVICES}


def ident(name: str) -> str:
    """A service name as a template attribute and HAProxy section name (``heat-cfn`` ->
    ``heat_cfn``)."""
    return name.replace("-", "_")


def vip_services() -> list[Service]:
    """What HAProxy serves on the VIP, in table order."""
    return [s for s in SERVICES if s.behind_vip]


def urls(vip: IPv4Address | str) -> dict[str, str]:
    """``http://VIP:PORT`` of every service behind the VIP, by template identifier."""
    return {ident(s.name): f"http://{vip}:{s.port}" for s in vip_services()}


def wsgi_services(placement: str) -> list[Service]:
    """The services the web server of a node of ``placement`` runs (its Listen lines)."""
    return [s for s in SERVICES if s.wsgi and s.placement == placement]


def ports() -> dict[str, int]:
    """Every service's port, by template identifier."""
    return {ident(s.name): s.port for s in SERVICES if s.port}
