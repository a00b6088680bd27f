"""Reading what the DNS server holds now: zone transfers and plain lookups.

A TSIG-signed AXFR gives the whole zone (so an address held by a name we do
not know about is seen too). Where transfers are refused, per-name queries
read just the names a plan needs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.xfr
import dns.zone

from provisioner.ddns.client import DnsServer, rejected, with_retries
from provisioner.ddns.plan import ZoneData
from provisioner.ddns.records import RRset, absolute
from provisioner.errors import DnsRejected

log = logging.getLogger(__name__)

_SKIP_TYPES = {"SOA", "NS", "RRSIG", "NSEC", "NSEC3", "DNSKEY", "NSEC3PARAM", "TYPE65534"}


def transfer_zone(server: DnsServer, zone: str, retry_for: float = 0.0) -> ZoneData:
    """The whole zone by AXFR, signed with the site's TSIG key."""
    origin = dns.name.from_text(zone)
    what = f"transfer of zone {absolute(zone)}"

    def run() -> dns.zone.Zone:
        txn_zone = dns.zone.Zone(origin, relativize=False)
        query, _serial = dns.xfr.make_query(
            txn_zone, keyring=server.keyring, keyname=server.keyname, keyalgorithm=server.algorithm
        )
        dns.query.inbound_xfr(
            server.address,
            txn_zone,
            query,
            port=server.port,
            timeout=server.timeout,
            lifetime=server.timeout * 6,
        )
        return txn_zone

    data = ZoneData(absolute(zone))
    for name, rdataset in with_retries(server, run, what, retry_for).iterate_rdatasets():
        rtype = dns.rdatatype.to_text(rdataset.rdtype)
        if rtype == "SOA" and name == origin:
            data.serial = int(rdataset[0].serial)
        if rtype in _SKIP_TYPES:
            continue
        values = frozenset(
            rd.to_text().lower() if rtype != "TXT" else rd.to_text() for rd in rdataset
        )
        data.names.setdefault(absolute(name.to_text()), {})[rtype] = RRset(rdataset.ttl, values)
    log.debug("zone %s: %d names read by AXFR from %s", zone, len(data.names), server.where)
    return data


def query_rrset(server: DnsServer, name: str, rtype: str, retry_for: float = 0.0) -> RRset | None:
    """One rrset straight from the authoritative server (TCP, TSIG-signed)."""
    what = f"query {absolute(name)} {rtype}"
    query = dns.message.make_query(name, rtype)
    query.use_tsig(server.keyring, keyname=server.keyname, algorithm=server.algorithm)
    response = with_retries(server, lambda: server.tcp(query), what, retry_for)
    rcode = dns.rcode.to_text(response.rcode())
    if rcode not in ("NOERROR", "NXDOMAIN"):
        raise rejected(what, server.where, rcode)
    qname = dns.name.from_text(name)
    for rrset in response.answer:
        if rrset.name == qname and dns.rdatatype.to_text(rrset.rdtype) == rtype:
            texts = (rd.to_text() if rtype == "TXT" else rd.to_text().lower() for rd in rrset)
            return RRset(rrset.ttl, frozenset(texts))
    return None


def query_names(
    server: DnsServer,
    zone: str,
    names: Iterable[str],
    rtypes: Iterable[str],
    retry_for: float = 0.0,
) -> ZoneData:
    """The given rrsets of ``names`` (a partial view of the zone)."""
    data = ZoneData(absolute(zone), complete=False)
    rtypes = list(rtypes)
    for name in sorted(set(names)):
        for rtype in rtypes:
            rrset = query_rrset(server, name, rtype, retry_for)
            if rrset is not None:
                data.names.setdefault(name, {})[rtype] = rrset
    return data


def read_zone(
    server: DnsServer,
    zone: str,
    names: Iterable[str],
    rtypes: Iterable[str],
    retry_for: float = 0.0,
) -> ZoneData:
    """AXFR the zone; when transfers are refused, query ``names`` one by one."""
    try:
        return transfer_zone(server, zone, retry_for)
    except DnsRejected as exc:
        if exc.rcode not in ("REFUSED", "NOTAUTH", "NOTIMP"):
            raise
        log.info("zone %s: transfer refused by %s, querying names one by one", zone, server.where)
        return query_names(server, zone, names, rtypes, retry_for)
