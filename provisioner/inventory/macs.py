"""MAC addresses: the one normaliser, used by site.yaml and by every lookup.

A MAC arrives in many spellings: site.yaml ('52:54:00:12:34:56', maybe
upper case or with hyphens), iPXE's ``${netX/mac:hexhyp}`` ('52-54-00-12-34-56'),
dnsmasq's log lines, a switch's table ('5254.0012.3456') or bare hex. All of
them become the lower-case colon form, which is the only form the inventory
stores and the only key of the site's MAC index.
"""

from __future__ import annotations

import re

#: six pairs with one separator throughout, three dotted quads, or twelve bare digits
_FORMS = (
    re.compile(r"^[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$"),
    re.compile(r"^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$"),
    re.compile(r"^[0-9a-f]{12}$"),
)


def normalise_mac(raw: str) -> str | None:
    """The colon form of ``raw`` ('52:54:00:12:34:56'), or None if it is no MAC."""
    text = raw.strip().lower()
    if not any(form.match(text) for form in _FORMS):
        return None
    digits = text.replace(":", "").replace("-", "").replace(".", "")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def nic_mac(raw: str) -> str:
    """A NIC's MAC for site.yaml: normalised, unicast; ValueError says what is wrong."""
    mac = normalise_mac(raw)
    if mac is None:
        raise ValueError(f"{raw!r} is not a MAC address (six hex pairs like 52:54:00:12:34:56)")
    if int(mac[:2], 16) & 1:
        raise ValueError(f"'{raw}' is a multicast MAC address, not a NIC's")
    if mac == "00:00:00:00:00:00":
        raise ValueError(f"'{raw}' is the all-zero MAC address, not a NIC's")
    return mac
