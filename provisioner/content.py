"""Where the content folders (pxe/, kickstart/, dns/, hooks/) are found.

They ship inside the wheel as ``provisioner/content/<kind>``; in a source
checkout (editable install, tests) they sit at the top of the repository. A site
may point at its own copies: a file there takes precedence over the bundled
file of the same relative path, so a site copies only what it changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ContentKind = Literal["pxe", "kickstart", "dns", "hooks"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def bundled_dir(kind: ContentKind) -> Path:
    """The folder shipped with the package (wheel layout first, then checkout)."""
    for candidate in (_PACKAGE_DIR / "content" / kind, _PACKAGE_DIR.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled content folder '{kind}' is missing from this install")


@dataclass(frozen=True)
class ContentPaths:
    """Search path per content kind: site overrides first, bundled last."""

    overrides: dict[str, Path] = field(default_factory=dict)

    def search_path(self, kind: ContentKind) -> list[Path]:
        paths = []
        if kind in self.overrides and self.overrides[kind].is_dir():
            paths.append(self.overrides[kind])
        paths.append(bundled_dir(kind))
        return paths

    def find(self, kind: ContentKind, relpath: str) -> Path:
        """The first file named ``relpath`` along ``kind``'s search path."""
        rel = Path(relpath)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"content path must be relative and inside the folder: {relpath}")
        for base in self.search_path(kind):
            candidate = base / rel
            if candidate.exists():
                return candidate
        raise FileNotFoundError(f"{kind}/{relpath} not found in {self.search_path(kind)}")
