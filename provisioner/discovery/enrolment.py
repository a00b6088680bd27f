"""Write an enrolled machine into site.yaml, keeping the operator's comments and layout.

site.yaml is the operator's file: it is edited the way a person would. The new
node's entry is written (ruamel.yaml, flow lists, quoted where a YAML 1.1 reader
would misread a value) as text after the last node, at the file's own dash
column, so every other byte of the file stays as it was, comments after the list
included. When ``nodes`` is not a plain block list, ruamel.yaml's round trip adds
it instead (comments, order and quoting kept; one indentation style for the
file). The result is validated as a whole before it replaces the file
(atomically, same folder, same mode). A result that does not
validate leaves site.yaml untouched and says why, naming the machine and field.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from provisioner.errors import EnrolmentError
from provisioner.inventory import Site
from provisioner.inventory.loader import load_site_text


def _mapping_indent(text: str) -> int:
    """The smallest indentation of a nested mapping key: the file's mapping indent."""
    found = [
        len(line) - len(line.lstrip(" "))
        for line in text.splitlines()
        if line.startswith(" ") and not line.lstrip(" ").startswith(("-", "#")) and line.strip()
    ]
    return min(found, default=2)


def _yaml(text: str) -> tuple[YAML, Any]:
    """A round-trip YAML set to the file's own indentation, and the file's data."""
    _, seq_indent, offset = load_yaml_guess_indent(text)
    yaml = YAML()  # round trip
    yaml.preserve_quotes = True
    offset = offset or 0
    yaml.indent(
        mapping=_mapping_indent(text), sequence=max(seq_indent or 2, offset + 2), offset=offset
    )
    yaml.width = 4096  # never fold an operator's long lines
    return yaml, yaml.load(text)


def _scalar(value: Any) -> Any:
    """A string quoted where a YAML 1.1 reader (PyYAML) would take it for something else:
    a MAC like 52:54:00:00:02:10 is a base-60 number there, 'no' a boolean."""
    if not isinstance(value, str):
        return value
    try:
        plain = pyyaml.safe_load(value)
    except pyyaml.YAMLError:
        plain = None
    return value if plain == value else DoubleQuotedScalarString(value)


def _commented(value: Any) -> Any:
    if isinstance(value, dict):
        return CommentedMap((k, _commented(v)) for k, v in value.items())
    if isinstance(value, list):
        seq = CommentedSeq(_commented(v) for v in value)
        if value and all(isinstance(v, str) for v in value):
            seq.fa.set_flow_style()  # short lists of names stay one line, as the example's
        return seq
    return _scalar(value)


def _dump_item(entry: dict[str, Any], column: int) -> list[str]:
    """``entry`` as one block sequence item whose dash is at ``column``."""
    yaml = YAML()
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=2, offset=0)
    out = io.StringIO()
    yaml.dump(CommentedSeq([_commented(entry)]), out)
    lines = out.getvalue().splitlines(keepends=True)
    return [" " * column + line for line in lines]


def _inserted(text: str, entry: dict[str, Any]) -> str | None:
    """The node added as text after the last node, so every other byte of the file stays;
    None when ``nodes`` is not a plain block list (then the round trip does it)."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if re.match(r"nodes:\s*(#.*)?$", line)]
    if len(starts) != 1:
        return None
    start = starts[0]
    end = len(lines)
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line[:1] not in ("", " ", "-", "#", "\n", "\r"):  # the next top-level key
            end = i
            break
    while end > start + 1 and (
        not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")
    ):
        end -= 1
    dashes = [line for line in lines[start + 1 : end] if line.lstrip(" ").startswith("- ")]
    if not dashes:
        return None
    column = len(dashes[0]) - len(dashes[0].lstrip(" "))
    if not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    new = _dump_item(entry, column)
    return "".join(lines[:end] + new + lines[end:])


def site_with_node(text: str, entry: dict[str, Any]) -> str:
    """site.yaml's text with ``entry`` appended to ``nodes``; everything else as it was."""
    inserted = _inserted(text, entry)
    if inserted is not None:
        return inserted
    yaml, data = _yaml(text)
    if not isinstance(data, CommentedMap):
        raise EnrolmentError("site.yaml: the file must hold a mapping of sections")
    nodes = data.get("nodes")
    if nodes is None:
        data["nodes"] = nodes = CommentedSeq()
    if not isinstance(nodes, CommentedSeq):
        raise EnrolmentError("site.yaml: nodes: must be a list of nodes")
    nodes.append(_commented(entry))
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def write_node(site_path: Path, entry: dict[str, Any], who: str) -> Site:
    """Append ``entry`` to site.yaml if the whole result validates; the new site."""
    text = site_path.read_text(encoding="utf-8")
    new_text = site_with_node(text, entry)
    site, problems = load_site_text(new_text, site_path.resolve().parent)
    errors = [p for p in problems if p.severity == "error"]
    if site is None or errors:
        shown = "; ".join(str(p) for p in errors[:5]) or "site.yaml does not validate"
        raise EnrolmentError(f"{who}: site.yaml left unchanged: the new node would not validate: "
                             f"{shown}")  # fmt: skip
    fd, tmp = tempfile.mkstemp(prefix=".site-", suffix=".yaml", dir=site_path.resolve().parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new_text)
        os.chmod(tmp, site_path.stat().st_mode & 0o777)
        os.replace(tmp, site_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return site
