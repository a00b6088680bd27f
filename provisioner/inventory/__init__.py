"""The site inventory: typed models of site.yaml, secrets and validation.

The names below load on first use (PEP 562): importing a light submodule
(``inventory.macs``) must not import the loader, pydantic's models and YAML."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provisioner.inventory.loader import load_site, validate_site_file
    from provisioner.inventory.models import Node, Role, Site
    from provisioner.inventory.problems import Problem

__all__ = ["Node", "Problem", "Role", "Site", "load_site", "validate_site_file"]

_WHERE = {
    "load_site": "loader",
    "validate_site_file": "loader",
    "Node": "models",
    "Role": "models",
    "Site": "models",
    "Problem": "problems",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
