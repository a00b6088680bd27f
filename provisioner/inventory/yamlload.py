"""Load site.yaml keeping what an operator typed.

PyYAML follows YAML 1.1: ``52:54:00:12:34:56`` becomes a sexagesimal integer,
``off``/``no`` become False and ``0623`` becomes 403. Here only YAML 1.2 core
scalars are typed (true/false, decimal ints, plain floats); everything else
stays a string. Duplicate keys are errors instead of silently winning, and each
mapping remembers the line of each of its keys so problems can point at them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from provisioner.errors import SiteFileError


class LineDict(dict[str, Any]):
    """A mapping that remembers where each key was written (1-based lines)."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    line: int = 0
    item_lines: list[int]


class SiteLoader(yaml.SafeLoader):
    pass


SiteLoader.yaml_implicit_resolvers = {
    first: [
        (tag, rx) for tag, rx in resolvers if tag.rsplit(":", 1)[-1] not in ("bool", "int", "float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SiteLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
SiteLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
SiteLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def _construct_mapping(loader: SiteLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in result:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key '{key}' (first on line {result.key_lines[key]})",
                key_node.start_mark,
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: SiteLoader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


SiteLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
SiteLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml_text(text: str, source: str = "<string>") -> Any:
    try:
        return yaml.load(text, Loader=SiteLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise SiteFileError(f"{where}: malformed YAML: {what}") from exc
    except yaml.YAMLError as exc:
        raise SiteFileError(f"{source}: malformed YAML: {exc}") from exc


def load_yaml_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteFileError(f"{path}: cannot read: {exc.strerror}") from exc
    return load_yaml_text(text, str(path))


def line_of(data: Any, loc: tuple[str | int, ...]) -> int | None:
    """The line of the deepest element of ``loc`` that can be located in ``data``."""
    line: int | None = getattr(data, "line", None)
    current = data
    for part in loc:
        if isinstance(current, LineDict) and isinstance(part, str) and part in current:
            line = current.key_lines.get(part, line)
            current = current[part]
        elif isinstance(current, LineList) and isinstance(part, int) and part < len(current):
            line = current.item_lines[part]
            current = current[part]
        else:
            break
    return line
