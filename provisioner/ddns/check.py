"""`dns check`: does every node and VIP resolve forward and reverse?

The expectations are pure data from the site; the lookups are plain
(unsigned) queries to the authoritative server, as any resolver would send.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from provisioner.ddns.client import DnsServer, with_retries
from provisioner.ddns.records import site_publications
from provisioner.inventory.models import Site

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Expectation:
    owner: str
    name: str
    rtype: str
    expected: str


@dataclass(frozen=True)
class CheckResult:
    expectation: Expectation
    found: tuple[str, ...]
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.found == (self.expectation.expected,)

    @property
    def problem(self) -> str:
        exp = self.expectation
        if self.error:
            return self.error
        if not self.found:
            return f"no {exp.rtype} record (expected {exp.expected})"
        if exp.expected not in self.found:
            return f"{exp.rtype} is {', '.join(self.found)} (expected {exp.expected})"
        return f"{exp.rtype} has extra values: {', '.join(self.found)}"


def expectations(site: Site) -> list[Expectation]:
    """Forward (A, CNAME) and reverse (PTR) answers each node and VIP must give."""
    out = []
    for pub in site_publications(site):
        for name, rrsets in pub.forward.items():
            for rtype in ("A", "CNAME"):
                if rtype in rrsets:
                    value = next(iter(rrsets[rtype].values))
                    out.append(Expectation(pub.owner.label, name, rtype, value))
        for ptr, target in pub.reverse.items():
            out.append(Expectation(pub.owner.label, ptr, "PTR", target))
    return out


def lookup(server: DnsServer, name: str, rtype: str, retry_for: float = 0.0) -> tuple[str, ...]:
    """The answer's values for exactly (name, rtype), no recursion, UDP then TCP."""
    query = dns.message.make_query(name, rtype)
    query.flags &= ~dns.flags.RD

    def ask() -> dns.message.Message:
        response = dns.query.udp(query, server.address, timeout=server.timeout, port=server.port)
        if response.flags & dns.flags.TC:
            response = server.tcp(query)
        return response

    response = with_retries(server, ask, f"lookup {name} {rtype}", retry_for)
    rcode = dns.rcode.to_text(response.rcode())
    if rcode not in ("NOERROR", "NXDOMAIN"):
        raise dns.exception.DNSException(f"{rcode}")
    wanted = dns.rdatatype.from_text(rtype)
    values = []
    for rrset in response.answer:
        if rrset.name.to_text().lower() == name and rrset.rdtype == wanted:
            values += [rd.to_text().lower() for rd in rrset]
    return tuple(sorted(values))


def run_checks(
    server: DnsServer, wanted: list[Expectation], retry_for: float = 0.0
) -> list[CheckResult]:
    results = []
    for exp in wanted:
        try:
            found = lookup(server, exp.name, exp.rtype, retry_for)
            results.append(CheckResult(exp, found))
        except dns.exception.DNSException as exc:
            results.append(CheckResult(exp, (), f"server answered {exc}"))
        result = results[-1]
        if not result.ok:
            log.warning("%s: %s %s: %s", exp.owner, exp.name, exp.rtype, result.problem)
    return results
