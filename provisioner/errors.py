"""One exception tree rooted at ProvisionerError.

Every error a user can cause or fix derives from ProvisionerError and carries a
message that names the node (or section) and the field involved. The CLI prints
these as one clean line; anything else is an internal error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provisioner.inventory.problems import Problem


class ProvisionerError(Exception):
    """Base of every error the user is meant to read."""

    exit_code = 1


class ConfigError(ProvisionerError):
    """The site inventory or a setting is wrong."""


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


class ProgramMissing(ProvisionerError):
    """An external program or file the project needs is not installed here.

    Raised by provisioner.programs only, so the message always has the same shape:
    what is missing, where it was looked for, what needs it, and the command that fixes it.
    """

    def __init__(self, name: str, where: str, why: str, fix: str) -> None:
        self.name, self.fix = name, fix
        super().__init__(f"{name} is missing (looked in {where}); needed for {why}; fix: {fix}")


class UnknownNode(ProvisionerError):
    def __init__(self, node: str) -> None:
        self.node = node
        super().__init__(f"node {node}: not in the inventory")


class StateError(ProvisionerError):
    """Problems with the node state store."""


class NodeNotEnrolled(StateError):
    def __init__(self, node: str) -> None:
        self.node = node
        super().__init__(f"node {node}: not enrolled in the state store (run 'provisioner enroll')")


class IllegalTransition(StateError):
    def __init__(self, node: str, state: str, event: str, allowed: Sequence[str] = ()) -> None:
        self.node, self.state, self.event = node, state, event
        hint = f" (allowed from {state}: {', '.join(allowed)})" if allowed else ""
        super().__init__(f"node {node}: cannot '{event}' while {state}{hint}")


class ConcurrentUpdate(StateError):
    def __init__(self, node: str, expected: str, found: str) -> None:
        super().__init__(
            f"node {node}: state changed underneath us (expected {expected}, found {found})"
        )


class NodeReserved(StateError):
    """Another operation holds the node's reservation."""

    def __init__(self, node: str, owner: str, operation: str, since: str) -> None:
        self.node, self.owner, self.operation = node, owner, operation
        super().__init__(
            f"node {node}: reserved by {owner} for '{operation}' since {since}; "
            "wait for it to finish or release it"
        )
