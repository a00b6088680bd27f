"""What a virtual BMC remembers across restarts: power intent and boot flags.

Boot flags are modelled as IPMI defines them: a persistent device that applies
to every boot, and a one-time device that applies to exactly the next boot and
then falls back to the persistent one.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class BootFlags:
    persistent: str = "disk"  # network | disk
    once: str | None = None  # network | disk | None
    uefi: bool = True

    def next_device(self) -> str:
        return self.once or self.persistent

    def take_next(self) -> str:
        """The device for the boot starting now; a one-time choice is spent."""
        device = self.next_device()
        self.once = None
        return device


@dataclass
class BmcState:
    power: str = "off"  # the intent: what the BMC was last told
    boot: BootFlags = field(default_factory=BootFlags)
    last_boot_device: str | None = None
    boots: int = 0
    qemu_pid: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BmcState:
        boot = BootFlags(**data.get("boot", {}))
        rest = {k: v for k, v in data.items() if k != "boot"}
        return cls(boot=boot, **rest)


class StateFile:
    """Atomic JSON file (write to a temp file, fsync, rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> BmcState:
        if not self.path.exists():
            return BmcState()
        return BmcState.from_dict(json.loads(self.path.read_text(encoding="utf-8")))

    def save(self, state: BmcState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(state.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
