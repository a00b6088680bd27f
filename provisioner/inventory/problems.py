"""A validation finding: what is wrong, where (node or section), which field."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]

#: a problem prints on one line whatever the value it quotes holds
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def _visible(text: str) -> str:
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)


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
        text = f"{at}{self.severity}: {self.where}{field}: {self.message}"
        return _visible(text)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
