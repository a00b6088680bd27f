"""One exception tree rooted at ProvisionerError, and the CLI's exit code of each branch.

Every error a user can cause or fix derives from ProvisionerError and carries a
message that names the node (or section) and the field involved. The CLI prints
these as one clean line and exits with the class's ``exit_code``; anything else
is an internal error (exit 70, traceback in the log). Library errors (pyghmi,
dnspython, tftpy) are caught at the backend boundary and re-raised from here
with ``raise ... from exc``.

    ProvisionerError                      1  an operation failed (BMC, DNS, DHCP, serve...)
    ├── ConfigError                       2  site.yaml or a setting is wrong: fix it, run again
    │   ├── SiteFileError, InventoryInvalid, SecretError
    │   ├── TemplateError, BootTemplateError, LayoutError, RoleConfigError, DhcpConfigError
    │   └── ProgramMissing (a program this use needs is not installed: see programs.py)
    ├── NotFoundError                     3  no such node (in the inventory or the store)
    │   ├── UnknownNode
    │   └── NodeNotEnrolled (also a StateError)
    ├── ConflictError                     4  the node is busy or in the wrong state: wait or release
    │   ├── StateError: IllegalTransition, ConcurrentUpdate, NodeReserved, DeploySpent
    │   ├── QuorumAtRisk
    │   └── DnsConflict (also a DnsError)
    ├── PartialFailure                    5  some nodes failed, the others went on (each reported)
    │   └── PowerFailed
    ├── PowerError: BmcAuthError, BmcUnreachable, BmcTimeout, BmcTransientError, BmcCommandError
    ├── DnsError: DnsUnreachable, DnsRejected (DnsAuthError, DnsChanged)
    ├── DnsmasqError, TftpError, ServeError, DaemonError
    ├── BundleError, DeliveryError, ImageError
    ├── DiscoveryError: DiscoveryReportInvalid, EnrolmentError (also a ConfigError: 2),
    │   UnknownDiscovered (also a NotFoundError: 3)
    └── StepFailed, CallbackRejected, CallbackInvalid, CallbackConflict
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provisioner.ddns.plan import Conflict
    from provisioner.inventory.problems import Problem

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_PARTIAL = 5
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug


class ProvisionerError(Exception):
    """Base of every error the user is meant to read."""

    exit_code = EXIT_FAILED


class NotFoundError(ProvisionerError):
    """What was asked for does not exist."""

    exit_code = EXIT_NOT_FOUND


class ConflictError(ProvisionerError):
    """The request clashes with what is going on (a busy node, a state, a quorum)."""

    exit_code = EXIT_CONFLICT


class PartialFailure(ProvisionerError):
    """Some of the nodes failed; the others went on. Each one is reported on its own."""

    exit_code = EXIT_PARTIAL


class ConfigError(ProvisionerError):
    """The site inventory or a setting is wrong."""

    exit_code = EXIT_CONFIG


class SiteFileError(ConfigError):
    """site.yaml cannot be read or parsed (carries line and column when known)."""


class InventoryInvalid(ConfigError):
    """site.yaml parsed but failed validation; holds every problem found."""

    def __init__(self, path: str, problems: Sequence[Problem]) -> None:
        self.path = path
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        super().__init__(f"{path}: {len(errors)} problem(s) found")


class SecretError(ConfigError):
    """A secret reference cannot be resolved. Never carries the secret itself."""


class ProgramMissing(ConfigError):
    """An external program or file the project needs is not installed here.

    Raised by provisioner.programs only, so the message always has the same shape:
    what is missing, where it was looked for, what needs it, and the command that fixes it.
    """

    def __init__(self, name: str, where: str, why: str, fix: str) -> None:
        self.name, self.fix = name, fix
        super().__init__(f"{name} is missing (looked in {where}); needed for {why}; fix: {fix}")


class UnknownNode(NotFoundError):
    def __init__(self, node: str) -> None:
        self.node = node
        super().__init__(f"node {node}: not in the inventory")


class StateError(ConflictError):
    """Problems with the node state store."""


class NodeNotEnrolled(StateError, NotFoundError):
    exit_code = EXIT_NOT_FOUND

    def __init__(self, node: str) -> None:
        self.node = node
        super().__init__(f"node {node}: not enrolled in the state store (run 'provisioner enroll')")


class IllegalTransition(StateError):
    def __init__(self, node: str, state: str, event: str, allowed: Sequence[str] = ()) -> None:
        self.node, self.state, self.event = node, state, event
        hint = f" (allowed from {state}: {', '.join(allowed)})" if allowed else ""
        super().__init__(f"node {node}: cannot '{event}' while {state}{hint}")


class StateDatabaseUnreachable(StateError):
    """The state database cannot be reached (server down, wrong URL, refused login)."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"state database {where}: {why}")


class SchemaOutdated(StateError):
    """The shared database's schema is older (or newer) than this provisioner's."""

    def __init__(self, found: str | None, wanted: str) -> None:
        super().__init__(
            f"state database: schema revision {found or 'none'}, this provisioner needs "
            f"{wanted}: run 'provisioner db upgrade --db-url URL' (once, from one host)"
        )


class ConcurrentUpdate(StateError):
    def __init__(self, node: str, expected: str, found: str) -> None:
        super().__init__(
            f"node {node}: state changed underneath us (expected {expected}, found {found})"
        )


class DeploySpent(StateError):
    """The deployment a token was made for is over (its token spent, or a new deploy began)."""

    def __init__(self, node: str) -> None:
        self.node = node
        super().__init__(f"node {node}: its deploy is already spent")


class NodeReserved(StateError):
    """Another operation holds the node's reservation."""

    def __init__(self, node: str, owner: str, operation: str, since: str) -> None:
        self.node, self.owner, self.operation = node, owner, operation
        super().__init__(
            f"node {node}: reserved by {owner} for '{operation}' since {since}; "
            "wait for it to finish or release it"
        )


class BootTemplateError(ConfigError):
    """A pxe/ template is missing or fails to render."""


class DnsmasqError(ProvisionerError):
    """dnsmasq is missing, rejects its configuration, or will not stay up."""


class ServeError(ProvisionerError):
    """The boot server cannot start."""


class TftpError(ProvisionerError):
    """The TFTP server cannot start."""


class PowerFailed(PartialFailure):
    """Some nodes of a power command failed (each is reported in the table)."""


class DaemonError(ProvisionerError):
    pass


class DnsError(ProvisionerError):
    """Anything that went wrong talking to the DNS server."""


class DnsUnreachable(DnsError):
    pass


class DnsRejected(DnsError):
    def __init__(self, message: str, rcode: str) -> None:
        self.rcode = rcode
        super().__init__(message)


class DnsAuthError(DnsRejected):
    """The server rejected our TSIG signature (or we rejected its answer's)."""


class DnsChanged(DnsRejected):
    """A prerequisite failed: the zone changed since it was read."""


class DnsPartlyRejected(DnsRejected, PartialFailure):
    """The server refused the changes of some owners; every other owner's went in.

    ``failures`` holds one line per refused owner (its names, record types, RCODE)."""

    def __init__(self, message: str, rcode: str, failures: Sequence[str]) -> None:
        self.failures = list(failures)
        super().__init__(message, rcode)


class DnsConflict(DnsError, ConflictError):
    """The change would overwrite a name or address another host owns."""

    def __init__(self, conflicts: Sequence[Conflict]) -> None:
        self.conflicts = list(conflicts)
        lines = "\n".join(f"  {c}" for c in self.conflicts)
        super().__init__(f"{len(self.conflicts)} DNS conflict(s), nothing was changed:\n{lines}")


class DhcpConfigError(ConfigError):
    """The site cannot be served by DHCP as it stands."""


class LayoutError(ConfigError):
    """A partition layout is broken, or cannot fit a node's disks. Names the node."""


class CallbackRejected(ProvisionerError):
    """Bad, expired or replayed token, or a node we do not know: answer 403."""


class CallbackInvalid(ProvisionerError):
    """A well-authenticated request with a body we cannot use: answer 400."""


class CallbackConflict(ProvisionerError):
    """A well-formed report that does not fit the node's state (e.g. applied while
    active): answer 409, record nothing."""


class QuorumAtRisk(ConflictError):
    """The operation would leave a quorum service without a majority."""


class StepFailed(ProvisionerError):
    pass


class PowerError(ProvisionerError):
    """A power operation on one node failed. Names node and BMC, never the password."""

    def __init__(self, node: str, bmc: str, message: str) -> None:
        self.node, self.bmc, self.detail = node, bmc, message
        super().__init__(f"node {node}: BMC {bmc}: {message}")


class BmcAuthError(PowerError):
    """The BMC rejected the user name or password (not retried)."""


class BmcUnreachable(PowerError):
    """The BMC did not answer at all."""


class BmcTimeout(PowerError):
    """The operation did not finish within the per-call timeout."""


class BmcTransientError(PowerError):
    """Busy, out of sessions, a lost packet: worth another try."""


class BmcCommandError(PowerError):
    """The BMC answered with an error that retrying will not fix."""


class BundleError(ProvisionerError):
    pass


class RoleConfigError(ConfigError):
    """The inventory lacks something a role's HA configuration needs."""


class DeliveryError(ProvisionerError):
    pass


class ImageError(ProvisionerError):
    """An OS image could not be built, or a profile's image is not built yet."""


class TemplateError(ConfigError):
    """A template is missing, broken, or uses a variable that is not defined."""


class DiscoveryError(ProvisionerError):
    """Something about a discovered (not yet enrolled) machine went wrong."""


class DiscoveryReportInvalid(DiscoveryError):
    """A discovery report failed its checks; the message names the field."""


class UnknownDiscovered(DiscoveryError, NotFoundError):
    """No discovered machine has that MAC."""


class EnrolmentError(DiscoveryError, ConfigError):
    """A discovered machine cannot become a node as asked (names the machine and field)."""
