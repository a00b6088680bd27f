"""The connection to the authoritative DNS server: TSIG key, retries, errors.

dnspython errors stop here and come out as DnsError subclasses whose
messages name the server, the zone and the RCODE, never the TSIG secret.
"""

from __future__ import annotations

import binascii
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.tsig
import dns.xfr

from provisioner.errors import (
    DnsAuthError,
    DnsChanged,
    DnsError,
    DnsRejected,
    DnsUnreachable,
    SecretError,
)
from provisioner.inventory.models import Site

log = logging.getLogger(__name__)
T = TypeVar("T")

ALGORITHMS = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-md5": dns.tsig.HMAC_MD5,
}

_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable
    EOFError,  # connection closed mid-answer
    dns.exception.Timeout,
)

_RCODE_HINTS = {
    "NOTAUTH": "the server is not authoritative for the zone, or did not accept the TSIG key",
    "REFUSED": "the server refused: check the zone's update-policy grants the TSIG key",
    "NOTZONE": "a name is outside the zone",
    "SERVFAIL": "the server failed to apply it (see its log)",
    "FORMERR": "the server could not parse the message",
    "YXDOMAIN": "a name that should not exist now exists",
    "YXRRSET": "a record set that should not exist now exists",
    "NXDOMAIN": "a name that should exist is gone",
    "NXRRSET": "a record set is not what it was when read",
}
PREREQUISITE_RCODES = {"YXDOMAIN", "YXRRSET", "NXDOMAIN", "NXRRSET"}


@dataclass(frozen=True)
class DnsServer:
    address: str
    port: int
    keyname: dns.name.Name
    algorithm: dns.name.Name
    keyring: dict[dns.name.Name, dns.tsig.Key] = field(repr=False)
    timeout: float = 5.0

    @property
    def where(self) -> str:
        return f"{self.address}:{self.port}"

    @classmethod
    def from_site(cls, site: Site, timeout: float = 5.0) -> DnsServer:
        tsig = site.dns.tsig
        secret = site.secret(tsig.secret, "dns: tsig.secret")
        keyname = dns.name.from_text(tsig.name)
        algorithm = ALGORITHMS[tsig.algorithm]
        try:
            key = dns.tsig.Key(keyname, secret.get_secret_value(), algorithm)
        except (binascii.Error, ValueError) as exc:
            raise SecretError(
                f"dns: tsig.secret: {tsig.secret.describe()} is not a base64 TSIG secret"
            ) from exc
        return cls(str(site.dns.server), site.dns.port, keyname, algorithm, {keyname: key}, timeout)

    def tcp(self, message: dns.message.Message) -> dns.message.Message:
        return dns.query.tcp(message, self.address, timeout=self.timeout, port=self.port)

    def describe_error(self, exc: BaseException, what: str) -> DnsError:
        """Map a dnspython error from ``what`` (e.g. "update of zone X") to a DnsError."""
        key = f"TSIG key '{self.keyname.to_text(omit_final_dot=True)}'"
        if isinstance(exc, dns.tsig.PeerBadKey):
            return DnsAuthError(
                f"{what} at {self.where}: the server does not know {key} (BADKEY); "
                "check dns.tsig.name and dns.tsig.algorithm",
                "BADKEY",
            )
        if isinstance(exc, dns.tsig.PeerBadSignature | dns.tsig.BadSignature):
            return DnsAuthError(
                f"{what} at {self.where}: {key} was rejected (BADSIG); "
                "check dns.tsig.secret and dns.tsig.algorithm",
                "BADSIG",
            )
        if isinstance(exc, dns.tsig.PeerBadTime):
            return DnsAuthError(
                f"{what} at {self.where}: {key} rejected for clock skew (BADTIME)", "BADTIME"
            )
        if isinstance(exc, dns.tsig.PeerError | dns.message.UnknownTSIGKey):
            return DnsAuthError(f"{what} at {self.where}: TSIG failure ({type(exc).__name__})", "")
        if isinstance(exc, dns.xfr.TransferError):
            return rejected(what, self.where, dns.rcode.to_text(exc.rcode))
        return DnsError(f"{what} at {self.where}: {type(exc).__name__}: {exc}")


def rejected(what: str, where: str, rcode: str) -> DnsRejected:
    hint = _RCODE_HINTS.get(rcode, "")
    message = f"{what} at {where} failed with {rcode}" + (f": {hint}" if hint else "")
    if rcode in PREREQUISITE_RCODES:
        return DnsChanged(message + " (the zone changed since it was read; plan again)", rcode)
    return DnsRejected(message, rcode)


def with_retries(
    server: DnsServer,
    action: Callable[[], T],
    what: str,
    retry_for: float,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``action``, retrying network failures with backoff for up to ``retry_for`` s.

    A server that answers (even with an error) is not retried.
    """
    deadline = time.monotonic() + retry_for
    delay, attempt = 0.2, 1
    while True:
        try:
            return action()
        except _NETWORK_ERRORS as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DnsUnreachable(
                    f"{what}: DNS server {server.where} unreachable after {attempt} attempt(s) "
                    f"over {retry_for:.0f}s ({type(exc).__name__}: {exc})"
                ) from exc
            log.warning(
                "%s: DNS server %s unreachable (%s), retry %d in %.1fs",
                what,
                server.where,
                type(exc).__name__,
                attempt,
                min(delay, left),
            )
            sleep(min(delay, left))
            delay, attempt = min(delay * 2, 5.0), attempt + 1
        except dns.exception.DNSException as exc:
            raise server.describe_error(exc, what) from exc
