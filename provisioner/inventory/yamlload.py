"""Load site.yaml keeping what an operator typed.

PyYAML follows YAML 1.1: ``52:54:00:12:34:56`` becomes a sexagesimal integer,
``off``/``no`` become False and ``0623`` becomes 403. Here only YAML 1.2 core
scalars are typed (true/false, decimal ints, plain floats); everything else
stays a string. Duplicate keys are errors instead of silently winning, and each
mapping remembers the line of each of its keys so problems can point at them.
"""

from __future__ import annotations

import os
import re
import stat
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


#: site.yaml limits: a 10,000-node site is a few MB and 6 levels deep
MAX_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 64
#: nodes after expanding aliases (a "billion laughs" file is small but expands without end)
MAX_EXPANDED_NODES = 2_000_000


#: libyaml's C parser when PyYAML was built with it (4-5x faster on a big site); the
#: marks (lines, columns) of its nodes are the same, so problems keep their lines
_FAST = bool(getattr(yaml, "__with_libyaml__", False))
_Base: type = yaml.CSafeLoader if _FAST else yaml.SafeLoader


class SiteLoader(_Base):
    """SafeLoader with YAML 1.2 core scalars, a nesting limit and an alias expansion limit."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Refuse nesting deeper than MAX_DEPTH before PyYAML's recursion overflows
        (the pure-Python composer; the C one is checked in get_single_node)."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None and _FAST:
            too_deep = _deeper_than(node, MAX_DEPTH)
            if too_deep is not None:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", too_deep.start_mark
                )
        if node is not None and _expanded_size(node, {}) > MAX_EXPANDED_NODES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"expands to more than {MAX_EXPANDED_NODES} values through aliases",
                node.start_mark,
            )
        return node


def _deeper_than(root: yaml.Node, limit: int) -> yaml.Node | None:
    """The first node nested deeper than ``limit`` (walked without recursion; an
    anchored node reached again through an alias is not walked twice)."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return node
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
    return None


def _expanded_size(node: yaml.Node, seen: dict[int, int]) -> int:
    """How many values ``node`` stands for once every alias is copied out (memoised)."""
    known = seen.get(id(node))
    if known is not None:
        return known
    seen[id(node)] = 1  # a recursive alias counts once here; the constructor refuses it
    size = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            size += _expanded_size(child, seen)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            size += _expanded_size(key, seen) + _expanded_size(value, seen)
    seen[id(node)] = size
    return size


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
    if len(text) > MAX_BYTES:
        raise SiteFileError(f"{source}: larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        return yaml.load(text, Loader=SiteLoader)
    except RecursionError as exc:  # the depth limit should come first; never a traceback
        raise SiteFileError(f"{source}: malformed YAML: nested too deeply") from exc
    except yaml.MarkedYAMLError as exc:
        if "maximum nesting depth" in str(exc.problem):  # libyaml's own limit (1,000)
            exc.problem = f"nested deeper than {MAX_DEPTH} levels"
            exc.context = None
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise SiteFileError(f"{where}: malformed YAML: {what}") from exc
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, ...)
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = exc.character
        code = f"U+{ord(char) if isinstance(char, str) else char:04X}"
        raise SiteFileError(
            f"{source}:{line}:{column}: malformed YAML: character {code} is not allowed"
        ) from exc
    except yaml.YAMLError as exc:
        what = " ".join(str(exc).split())
        raise SiteFileError(f"{source}: malformed YAML: {what}") from exc


def read_text_file(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """A regular file's UTF-8 text, at most ``max_bytes``; SiteFileError says why not.

    Opened non-blocking and checked with fstat before reading, so a FIFO or a
    device (/dev/zero) is refused at once instead of hanging or filling memory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise SiteFileError(f"{path}: cannot read: {exc.strerror}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise SiteFileError(f"{path}: cannot read: {what}")
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise SiteFileError(f"{path}: cannot read: {exc.strerror}") from exc
    if len(data) > max_bytes:
        raise SiteFileError(f"{path}: larger than {max_bytes // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SiteFileError(
            f"{path}:{line}: not UTF-8 text: byte {exc.start} (0x{data[exc.start]:02x}) "
            "cannot be decoded; save the file as UTF-8"
        ) from None


def load_yaml_file(path: Path) -> Any:
    return load_yaml_text(read_text_file(path), str(path))


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
