"""The grammar of every site.yaml text that reaches a generated file.

A value typed here ends up in a kickstart command, a %pre/%post shell line, an
iPXE script, a preseed, an INI file or a YAML file. Each type accepts what an
operator legitimately writes and nothing that could end a line, open a quote
the template did not open, or name a file outside the content folders. The
templates escape as well (templating.py): these grammars make the error show
up at ``validate``, naming the field, instead of at render time or never.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import zoneinfo
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

#: characters that end a line in some reader (str.splitlines' set), plus the other controls
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def _show(value: str) -> str:
    """The value as the error shows it: escapes visible, long values cut."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _matcher(pattern: str, what: str, max_length: int = 255) -> Any:
    rx = re.compile(pattern)

    def check(value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError(f"{_show(value)} holds a control character or line break; {what}")
        if len(value) > max_length:
            raise ValueError(f"{_show(value)} is longer than {max_length} characters; {what}")
        if not rx.fullmatch(value):
            raise ValueError(f"{_show(value)} is malformed; {what}")
        return value

    return AfterValidator(check)


# -- names -------------------------------------------------------------------

_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_.+-]*"
#: a file or folder under a content root: relative, no '..', no hidden parts
ContentName = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(
        rf"{_SEGMENT}(?:/{_SEGMENT})*",
        "expected a relative name under the content folder (letters, digits, '_.+-', "
        "'/' between parts; no absolute path, no '..')",
    ),
]
RackName = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(
        r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}",
        "expected a rack name (letters, digits, '_.-', at most 63 characters)",
    ),
]
BmcUser = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(
        r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,63}",
        "expected a BMC user name (letters, digits, '_.@+-', at most 64 characters)",
    ),
]
BmcAddress = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(
        r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?"
        r"|https?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
        r"(?::[0-9]{1,5})?/?",
        "expected a BMC host name or IP address (Redfish: or an http(s)://host[:port] URL)",
    ),
]
ServiceName = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(
        r"[a-z0-9][a-z0-9_-]{0,62}", "expected a service name (lowercase letters, digits, '_-')"
    ),
]
Locale = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(
        r"(?:C|POSIX|[a-z]{2,3}(?:_[A-Z]{2})?)(?:\.[A-Za-z0-9-]+)?(?:@[a-z]+)?",
        "expected a locale like en_US.UTF-8",
        64,
    ),
]
#: RPM or Debian package name; '@group' / '@^environment' and a leading '-' (exclude) for RPM
PackageName = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(
        r"(?:-|@\^?)?[A-Za-z0-9_][A-Za-z0-9_.+*:~-]*",
        "expected a package name (letters, digits, '_.+-~:', optional '@group' or '-' to exclude)",
        128,
    ),
]
DiskByPath = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(r"[A-Za-z0-9][A-Za-z0-9:._+-]*", "expected a /dev/disk/by-path name"),
]
DiskSerial = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(r"[A-Za-z0-9_.:+/-]+(?: [A-Za-z0-9_.:+/-]+)*", "expected a disk serial number", 128),
]
DiskWwn = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(r"(?:0[xX])?[0-9A-Fa-f]{8,64}", "expected a WWN in hex (0x...)"),
]
DiskName = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(r"[a-z][a-z0-9]*(?:/[a-z0-9]+)?", "expected a kernel disk name like sda"),
]
#: a network device name as the kernel takes it (what keepalived, the kickstart's network
#: line and a bond's members name): at most 15 characters, no '/', ':' or blank ('eth0:1'
#: is an old alias label, not a device), not starting with '.'
KernelInterface = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(
        r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,14}",
        "expected a network device name like enp1s0, bond0 or eth0.12 (at most 15 characters: "
        "letters, digits, '_.-'; no ':' alias labels)",
    ),
    Field(json_schema_extra={"pattern": r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,14}$"}),
]
BondMode = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(r"[a-z0-9.-]+", "expected a bonding mode like 802.3ad or active-backup"),
]
BondOptions = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(
        r"(?:[a-z_]+=[A-Za-z0-9_.:-]+(?:,[a-z_]+=[A-Za-z0-9_.:-]+)*)?",
        "expected bonding options as key=value,key=value",
    ),
]


# -- addresses ------------------------------------------------------------------


def _address_text(value: Any) -> Any:
    """An address is written as text: pydantic would read YAML's ``true`` as 0.0.0.1 and a
    number as the address it encodes, which no operator means."""
    if isinstance(value, bool | int | float):
        raise ValueError(f"expected an address written as text (like '192.0.2.10'), got {value!r}")
    return value


#: an IPv4 address or network field: text (or an ipaddress object from code), never a number
AddressText = BeforeValidator(_address_text)


# -- URLs and boot files -----------------------------------------------------

_URL_CHARS = r"[A-Za-z0-9\-._~:/?#\[\]@!&()*+,;=%]"
RepoUrl = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(
        rf"(?:(?:https?|ftp)://{_URL_CHARS}+|nfs:{_URL_CHARS}+)",
        "expected an http://, https://, ftp:// or nfs: URL without blanks or quotes",
        2048,
    ),
]
#: a profile's kernel/initrd: a URL, or a path under the boot files folder
BootFile = Annotated[
    str,
    StringConstraints(strict=True),
    _matcher(
        rf"(?:(?:https?|ftp|tftp)://{_URL_CHARS}+|/?{_SEGMENT}(?:/{_SEGMENT})*)",
        "expected a path under the boot files folder (no '..') or an http(s)/ftp/tftp URL",
        2048,
    ),
]


# -- kernel arguments ---------------------------------------------------------

_KARG = re.compile(r"[A-Za-z0-9_.,:/=+@%~\[\]-]+")


def _kernel_args(value: Any) -> Any:
    """``"console=ttyS0 quiet"`` or ``[console=ttyS0, quiet]``: one string of plain tokens.

    Tokens are separated by blanks; quotes, '$' (iPXE expansion), ';', '|',
    '&', '#' and line breaks are refused, so the tokens land unchanged on the
    iPXE ``kernel`` line and on the kernel command line."""
    if isinstance(value, str):
        if _CONTROL.search(value.replace("\t", " ")):
            raise ValueError(f"{_show(value)} holds a control character or line break")
        tokens = value.split(" ")
    elif isinstance(value, list | tuple):
        tokens = []
        for item in value:
            if not isinstance(item, str):
                raise ValueError(f"expected a string for each argument, got {item!r}")
            tokens.append(item)
    else:
        raise ValueError("expected kernel arguments as a string or a list of strings")
    tokens = [t for t in tokens if t != ""]
    for token in tokens:
        if not _KARG.fullmatch(token):
            raise ValueError(
                f"kernel argument {_show(token)} is malformed: letters, digits and "
                "'_.,:/=+@%~[]-' only (no quotes, '$', blanks inside an argument)"
            )
    joined = " ".join(tokens)
    if len(joined) > 2048:
        raise ValueError("kernel arguments longer than 2048 characters")
    return joined


KernelArgs = Annotated[
    str,
    BeforeValidator(_kernel_args),
    Field(
        description="Extra kernel arguments: a string of blank-separated tokens, or a list; "
        "no quotes, '$' or line breaks"
    ),
]


# -- time zones ---------------------------------------------------------------


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(value: str) -> str:
    if _CONTROL.search(value) or value not in _timezones():
        raise ValueError(
            f"{_show(value)} is not a time zone of the tz database (like UTC or Europe/Paris)"
        )
    return value


Timezone = Annotated[
    str,
    StringConstraints(strict=True),
    AfterValidator(_timezone),
    Field(description="A tz database time zone, like UTC or Europe/Paris"),
]


# -- SSH public keys -----------------------------------------------------------

_SSH_KEY_TYPES = frozenset(
    {
        "ssh-rsa",
        "ssh-ed25519",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
_COMMENT = re.compile(r"[\x20-\x7e]*")


def ssh_public_key(value: str) -> str:
    """An OpenSSH public key line: type, base64 blob naming the same type, optional comment."""
    if _CONTROL.search(value):
        raise ValueError(f"{_show(value)} holds a control character or line break")
    parts = value.strip().split(None, 2)
    if len(parts) < 2:
        raise ValueError(
            f"{_show(value)} is not an SSH public key (expected 'TYPE BASE64 [comment]')"
        )
    kind, blob = parts[0], parts[1]
    comment = parts[2] if len(parts) == 3 else ""
    if kind not in _SSH_KEY_TYPES:
        raise ValueError(f"SSH key type {_show(kind)} is unknown (ssh-ed25519, ssh-rsa, ...)")
    try:
        raw = base64.b64decode(blob, validate=True)
        (length,) = struct.unpack(">I", raw[:4])
        inner = raw[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        raise ValueError(f"SSH key {_show(value)}: the key data is not valid base64") from None
    if inner != kind:
        raise ValueError(
            f"SSH key {_show(value)}: the key data is a {_show(inner)} key, not {kind}"
        )
    if not _COMMENT.fullmatch(comment) or '"' in comment or "\\" in comment:
        raise ValueError(f"SSH key comment {_show(comment)}: printable ASCII without quotes only")
    return " ".join(part for part in (kind, blob, comment) if part)


SshPublicKey = Annotated[
    str,
    StringConstraints(strict=True, max_length=16384),
    AfterValidator(ssh_public_key),
    Field(description="An OpenSSH public key line: 'ssh-ed25519 AAAA... comment'"),
]


# -- TSIG secrets --------------------------------------------------------------


def tsig_secret_problem(value: str) -> str | None:
    """Why ``value`` is not a usable base64 TSIG secret, or None. Never shows the value."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "does not hold a base64 TSIG secret (make one with tsig-keygen)"
    if not 16 <= len(raw) <= 512:
        return f"holds a {len(raw)}-byte TSIG secret; expected 16 to 512 bytes (tsig-keygen)"
    return None


__all__ = [
    "AddressText",
    "BmcAddress",
    "BmcUser",
    "BondMode",
    "BondOptions",
    "BootFile",
    "ContentName",
    "DiskByPath",
    "DiskName",
    "DiskSerial",
    "DiskWwn",
    "KernelArgs",
    "KernelInterface",
    "Locale",
    "PackageName",
    "RackName",
    "RepoUrl",
    "ServiceName",
    "SshPublicKey",
    "Timezone",
    "ssh_public_key",
    "tsig_secret_problem",
]
