"""A validation finding: what is wrong, where (node or section), which field."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    where: str  # "node ctl1", "network", "role controller", "dns"
    field: str  # dotted path inside that item, e.g. "bmc.port"
    message: str
    severity: Severity = "error"
    line: int | None = None

    def __str__(self) -> str:
        at = f"line {self.line}: " if self.line else ""
        field = f": {self.field}" if self.field else ""
        return f"{at}{self.severity}: {self.where}{field}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
