"""HTTP routes of unknown machines in discovery (``network.unknown_macs: discover``).

POST /api/v1/discovery              a hardware report (discovery/report.py), 202 when kept
GET  /api/v1/discovery/<mac>/next   what the discovery OS does next: {"action": ...}

Anyone on the provisioning network can call these, so nothing is trusted: the
route is off unless the site discovers; a body over 64 KiB is refused (413)
before it is parsed, deeper than the server's JSON depth limit too (400,
jsonlimits.py); each source address gets ``discovery.max_reports_per_minute``
reports (429 beyond); the report must pass its strict schema (400 naming the
field); a report that names the MAC of an inventory node is refused (409) and
changes nothing, so a machine cannot rewrite what an enrolled node is. A kept
report is data in the store; the answer echoes nothing of it but the MAC.

The next-action answer is one of "wait" (poll again), "poweroff" (enrolled: the
pipeline powers it on through its BMC to install it; or unmatched machines on
sites with ``discovery.unmatched: power_off``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque

from flask import Blueprint, Response, jsonify, request

from provisioner.bootserver.context import ServerContext
from provisioner.discovery.report import MAX_REPORT_BYTES, parse_report
from provisioner.discovery.rules import first_rule
from provisioner.errors import DiscoveryReportInvalid
from provisioner.inventory.macs import normalise_mac
from provisioner.state.discovered import Discoveries

log = logging.getLogger(__name__)

#: sources remembered by the rate limiter; the oldest is forgotten beyond this
MAX_SOURCES = 4096


class RateLimiter:
    """At most ``limit`` requests per source in any 60 s, in bounded memory."""

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, source: str, limit: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._seen.pop(source, None) or deque()
            while times and now - times[0] >= self.window_s:
                times.popleft()
            allowed = len(times) < limit
            if allowed:
                times.append(now)
            self._seen[source] = times
            while len(self._seen) > MAX_SOURCES:
                self._seen.popitem(last=False)
            return allowed


def _answer(http_status: int, **body: object) -> tuple[Response, int]:
    return jsonify(body), http_status


def blueprint(ctx: ServerContext) -> Blueprint:
    bp = Blueprint("discovery", __name__)
    limiter = RateLimiter()
    discoveries = Discoveries(ctx.store)

    @bp.post("/api/v1/discovery")
    def report() -> tuple[Response, int]:
        source = request.remote_addr or "?"
        site = ctx.site()
        if site.network.unknown_macs != "discover":
            log.warning("discovery: report from %s refused: the site does not discover", source)
            return _answer(404, error="discovery is off (network.unknown_macs: ignore)")
        if (request.content_length or 0) > MAX_REPORT_BYTES or len(
            request.get_data(cache=True)
        ) > MAX_REPORT_BYTES:
            log.warning("discovery: report from %s refused: larger than %d bytes", source,
                        MAX_REPORT_BYTES)  # fmt: skip
            return _answer(413, error=f"report larger than {MAX_REPORT_BYTES} bytes")
        if not limiter.allow(source, site.discovery.max_reports_per_minute):
            log.warning("discovery: report from %s refused: over the rate limit", source)
            return _answer(429, error="too many reports from this address; try later")
        raw = request.get_json(silent=True)
        try:
            parsed = parse_report(raw)
        except DiscoveryReportInvalid as exc:
            log.warning("discovery: report from %s refused: %s", source, exc)
            return _answer(400, error=str(exc))
        for mac in parsed.macs:
            node = site.node_by_mac(mac)
            if node is not None:
                log.warning(
                    "discovery: report from %s refused: MAC %s belongs to node %s",
                    source, mac, node.name,
                )  # fmt: skip
                return _answer(409, error=f"MAC {mac} belongs to an inventory node")
        new = discoveries.record(parsed.boot_mac, parsed.model_dump(mode="json"), source)
        log.info(
            "discovery: %s machine %s (from %s): %s",
            "new" if new else "known", parsed.boot_mac, source, parsed.summary(),
        )  # fmt: skip
        return _answer(202, status="recorded", mac=parsed.boot_mac)

    @bp.get("/api/v1/discovery/<raw_mac>/next")
    def next_action(raw_mac: str) -> tuple[Response, int]:
        mac = normalise_mac(raw_mac)
        site = ctx.site()
        if mac is None or site.network.unknown_macs != "discover":
            return _answer(404, error="no such machine in discovery")
        if site.node_by_mac(mac) is not None:
            return _answer(200, action="poweroff")  # enrolled: the pipeline takes it from here
        found = discoveries.get(mac)
        if found is None:
            return _answer(404, error="no such machine in discovery")
        rule = None
        try:
            rule = first_rule(site, parse_report(found.report))
        except DiscoveryReportInvalid:  # kept by an older version: report again
            return _answer(404, error="report again")
        if rule is None and site.discovery.unmatched == "power_off":
            return _answer(200, action="poweroff")
        return _answer(200, action="wait")

    return bp
