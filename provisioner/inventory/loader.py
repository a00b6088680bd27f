"""Read site.yaml into a Site, reporting every problem at once.

Sections and nodes are validated one by one, so a broken node does not hide
the problems of the others, and cross-checks still run over the nodes that
parsed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from provisioner.errors import InventoryInvalid, SiteFileError
from provisioner.inventory.checks import check_site
from provisioner.inventory.models import Node, Site
from provisioner.inventory.problems import Problem
from provisioner.inventory.rolesettings import parse_settings
from provisioner.inventory.yamlload import (
    LineDict,
    line_of,
    load_yaml_file,
    load_yaml_text,
    read_text_file,
)

_SECTIONS_BY_NAME = ("roles", "profiles")


def _friendly(err: dict[str, Any]) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field (misspelt?)"
    if kind == "string_type" and isinstance(err.get("input"), bool | int | float):
        return (
            f"expected a string, got {err['input']!r}: quote the value in site.yaml "
            "(YAML reads unquoted yes/no/on/off as booleans)"
        )
    if kind == "string_pattern_mismatch":
        return f"{err.get('input')!r} is malformed ({msg.lower()})"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _problems_from(
    exc: ValidationError, raw: Any, where_for: Any, loc_prefix: tuple[str | int, ...] = ()
) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where, field_loc = where_for(loc)
        field = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in field_loc)
        field = field.replace(".[", "[")
        problems.append(
            Problem(where, field, _friendly(dict(err)), "error", line_of(raw, loc_prefix + loc))
        )
    return problems


def _section_where(loc: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    if not loc:
        return "site.yaml", ()
    head, rest = loc[0], loc[1:]
    if head in _SECTIONS_BY_NAME and rest:
        name = rest[0] if _plain(rest[0]) else repr(rest[0])[:40]
        return f"{head.rstrip('s')} {name}", rest[1:]
    return str(head) if _plain(head) else repr(head)[:40], rest


def _plain(name: object) -> bool:
    """A name that can be shown as is in "node NAME" / "role NAME" (else it is quoted)."""
    return isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,63}", name) is not None


def parse_site(raw: Any, path: Path) -> tuple[Site | None, list[Problem]]:
    """Validate raw YAML data into a Site. Returns the site (None if unusable) and problems."""
    if not isinstance(raw, dict):
        return None, [Problem("site.yaml", "", "the file must hold a mapping of sections")]
    problems: list[Problem] = []
    raw_nodes = raw.get("nodes", [])
    nodes: list[Node] = []
    raw_index: dict[int, int] = {}
    if not isinstance(raw_nodes, list):
        problems.append(
            Problem("nodes", "", "must be a list of nodes", line=line_of(raw, ("nodes",)))
        )
        raw_nodes = []
    for i, raw_node in enumerate(raw_nodes):
        label = raw_node.get("name") if isinstance(raw_node, dict) else None
        where = f"node {label}" if _plain(label) else f"node #{i + 1}"
        try:
            node = Node.model_validate(raw_node)
        except ValidationError as exc:
            problems += _problems_from(exc, raw, lambda loc, w=where: (w, loc), ("nodes", i))
            continue
        raw_index[id(node)] = i
        nodes.append(node)

    header = {key: value for key, value in raw.items() if key != "nodes"}
    try:
        site = Site.model_validate({**header, "nodes": []})
    except ValidationError as exc:
        problems += _problems_from(exc, raw, _section_where)
        return None, problems
    site = site.model_copy(update={"nodes": nodes})
    site._base_dir = path.resolve().parent
    problems += _settings_problems(site, raw)
    problems += check_site(site, raw, raw_index)
    return site, problems


def _settings_problems(site: Site, raw: Any) -> list[Problem]:
    """Each role's settings against its kind's model (inventory/rolesettings.py)."""
    problems: list[Problem] = []
    for name, role in site.roles.items():
        try:
            parse_settings(site.role_kind(name), role.settings)
        except ValidationError as exc:
            problems += _problems_from(
                exc,
                raw,
                lambda loc, n=name: (f"role {n}", ("settings", *loc)),
                ("roles", name, "settings"),
            )
    return problems


def validate_site_file(
    path: Path, cache_dir: Path | None = None
) -> tuple[Site | None, list[Problem]]:
    """The site and every problem; with ``cache_dir``, a site that validated before
    with the same text (and secrets) is taken from the cache (inventory/sitecache.py)."""
    if cache_dir is None:
        return parse_site(load_yaml_file(path), path)
    from provisioner.inventory import sitecache

    text = read_text_file(path)
    key = sitecache.key_for(text, path)
    cached = sitecache.get(cache_dir, key, path)
    if cached is not None:
        return cached
    site, problems = parse_site(load_yaml_text(text, str(path)), path)
    if site is not None and not any(p.severity == "error" for p in problems):
        sitecache.put(cache_dir, key, site, problems)
    return site, problems


def load_site(path: Path | str, cache_dir: Path | None = None) -> Site:
    """Load and validate site.yaml; raise InventoryInvalid listing every error."""
    path = Path(path)
    site, problems = validate_site_file(path, cache_dir)
    if site is None or any(p.severity == "error" for p in problems):
        raise InventoryInvalid(str(path), problems)
    site.index  # noqa: B018 - built now, once, before a server forks its workers
    return site


def load_site_text(text: str, base_dir: Path) -> tuple[Site | None, list[Problem]]:
    """For tests and tools: validate YAML text as if it were base_dir/site.yaml."""
    raw = load_yaml_text(text, str(base_dir / "site.yaml"))
    return parse_site(raw, base_dir / "site.yaml")


__all__ = ["LineDict", "SiteFileError", "load_site", "load_site_text", "validate_site_file"]
