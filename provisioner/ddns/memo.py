"""`dns apply` with nothing to change, answered from the zones' SOA serials.

Reading both zones (AXFR, parsed by dnspython) and the site (pydantic) to find
that nothing changed cost seconds at 1,000 nodes. A plan's outcome depends only
on site.yaml and on what the zones hold, and every change to a zone bumps its
SOA serial (RFC 1034 4.3.5; BIND does it on each dynamic update). So after an
apply that left the zones as the site wants, the state dir keeps a memo: the
hash of site.yaml (with this code's identity and the command's scope), the
serial of each zone then, and what the run printed besides changes (orphans,
records left in place). The next `dns apply` with the same site and scope asks
the server for the two SOA serials (TSIG-signed, one UDP query each); when both
are unchanged, the zones are as the memo left them and nothing needs sending.

Anything unexpected (no memo, another site text or scope, a changed secret
file, a serial moved, no answer) sends the run down the full path, which reads
the zones live. The memo holds no secret: the TSIG secret's file or variable
name, and the file's stat stamp, so a new key is noticed.

This module imports only the standard library at load time (and dnspython for
the query): the point is to answer without importing the site models.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from provisioner import __version__

log = logging.getLogger(__name__)

VERSION = 1


@cache
def code_stamp() -> str:
    """This code's identity (every module's size and mtime): a memo made by other code,
    an edited checkout included, is never trusted."""
    digest = hashlib.sha256(f"{VERSION} {__version__} {sys.version}".encode())
    package = Path(__file__).resolve().parent.parent
    for path in sorted(package.rglob("*.py")):
        st = path.stat()
        digest.update(f"{path} {st.st_size} {st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def site_key(site_path: Path, names: tuple[str, ...], prune: bool) -> str | None:
    """The memo key of this site text and command scope (None: site.yaml unreadable)."""
    try:
        text = site_path.read_bytes()
    except OSError:
        return None
    digest = hashlib.sha256(code_stamp().encode())
    digest.update(str(site_path.resolve()).encode() + b"\0")
    digest.update(json.dumps([sorted(names), prune]).encode() + b"\0")
    digest.update(text)
    return digest.hexdigest()


def _stamp(path: str | None) -> list[int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, st.st_uid]


@dataclass
class Memo:
    key: str
    address: str
    port: int
    keyname: str
    algorithm: str
    secret_file: str | None
    secret_env: str | None
    zones: dict[str, int]
    orphans: list[str] = field(default_factory=list)
    left: list[list[str]] = field(default_factory=list)  # [owner, name, message]
    secret_stamp: list[int] | None = None

    def __post_init__(self) -> None:
        if self.secret_stamp is None:
            self.secret_stamp = _stamp(self.secret_file)


def save(path: Path, memo: Memo) -> None:
    """Write the memo atomically, private to this user; a failure only logs."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(memo), handle)
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("dns memo %s not written: %s", path, exc)


def load(path: Path) -> Memo | None:
    try:
        st = path.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            return None
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return Memo(**data)
    except (OSError, ValueError, TypeError):
        return None


def _secret(memo: Memo) -> str | None:
    if memo.secret_env is not None:
        return os.environ.get(memo.secret_env)
    if memo.secret_file is None or _stamp(memo.secret_file) != memo.secret_stamp:
        return None
    try:
        with open(memo.secret_file, encoding="utf-8") as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def soa_serials(memo: Memo, secret: str, timeout: float = 2.0) -> dict[str, int]:
    """The zones' SOA serials now, by TSIG-signed UDP queries (raises on any failure)."""
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype
    import dns.tsig

    keyname = dns.name.from_text(memo.keyname)
    keyring = {keyname: dns.tsig.Key(keyname, secret, memo.algorithm)}
    serials = {}
    for zone in memo.zones:
        query = dns.message.make_query(zone, dns.rdatatype.SOA)
        query.use_tsig(keyring, keyname=keyname, algorithm=memo.algorithm)
        response = dns.query.udp(query, memo.address, timeout=timeout, port=memo.port)
        if response.rcode() != dns.rcode.NOERROR or response.tsig is None:
            raise ValueError(f"zone {zone}: SOA query answered {response.rcode()}")
        rrset = response.find_rrset(
            response.answer, dns.name.from_text(zone), dns.rdataclass.IN, dns.rdatatype.SOA
        )
        serials[zone] = int(rrset[0].serial)
    return serials


def still_true(path: Path, key: str | None) -> Memo | None:
    """The memo at ``path`` if it is for ``key`` and both zones' serials are unchanged."""
    if key is None:
        return None
    memo = load(path)
    if memo is None or memo.key != key:
        return None
    secret = _secret(memo)
    if secret is None:
        return None
    try:
        serials = soa_serials(memo, secret)
    except Exception as exc:  # any doubt means: read the zones
        log.debug("dns memo not used: %s: %s", type(exc).__name__, exc)
        return None
    if serials != memo.zones:
        log.debug("dns memo not used: serials %s, memo %s", serials, memo.zones)
        return None
    return memo
