"""Jinja2 for kickstarts and preseeds: sandboxed, strict, and overridable file by file.

Templates are looked up along the content search path of ``kickstart`` (the
site's own copy first, then the bundled folder), so a site copies only the
files it changes. Snippets are included with ``{% include snippet("name") %}``,
which tries, in order:

    nodes/<node>/<name>.j2   one node's override
    roles/<role>/<name>.j2   one role's override
    snippets/<name>.j2       the default

Filters escape each value for the format it lands in, so a value that slipped
past ``validate`` still cannot start a line of its own: ``sh`` (shell word),
``ks`` (kickstart argument), ``ipxe``/``ipxe_args`` (iPXE arguments),
``oneline``/``ini`` (line-based formats: %packages, debconf, INI, heredocs)
and ``yaml`` (a JSON scalar, which YAML reads as is).

Jinja comments are ``<# ... #>`` here, not ``{# ... #}``: bash's ``${#ARR[@]}``
in %pre/%post would otherwise open a comment and break the template.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from provisioner.errors import TemplateError


def snippet_candidates(name: str, node: str, role: str) -> list[str]:
    """Where snippet ``name`` may live, most specific first."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise TemplateError(f"node {node}: snippet name '{name}' is not a plain name")
    return [f"nodes/{node}/{name}.j2", f"roles/{role}/{name}.j2", f"snippets/{name}.j2"]


def override_dirs(search_path: Sequence[Path], node: str, role: str) -> tuple[str, ...]:
    """The override folders (nodes/<node>, roles/<role>) that exist for this render.

    Looked up once per render so each snippet include does not probe folders
    that are not there (most nodes have none).
    """
    found = []
    for prefix in (f"nodes/{node}", f"roles/{role}"):
        if any((base / prefix).is_dir() for base in search_path):
            found.append(prefix)
    return tuple(found)


@pass_context
def _snippet(context: Context, name: str) -> list[str]:
    node = context.get("node")
    node_name = str(getattr(node, "name", "") or (node or {}).get("name", ""))
    role = str(getattr(node, "role", "") or (node or {}).get("role", ""))
    candidates = snippet_candidates(name, node_name, role)
    present = context.get("_override_dirs")
    if present is None:
        return candidates
    return [c for c in candidates if c.startswith("snippets/") or c.rsplit("/", 1)[0] in present]


#: what may not appear inside one emitted value: every line break str.splitlines() knows
#: (\n \r \v \f \x1c-\x1e \x85 U+2028 U+2029), NUL and the other control characters
_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
#: kickstart command arguments are split like a POSIX shell (shlex, '#' comments);
#: these characters need no quotes there ('$' included: anaconda does not expand it)
_KS_PLAIN = re.compile(r"[A-Za-z0-9@%+=:,./_$^~-]+")
#: iPXE expands ${...} and splits on blanks; it has no quoting to escape them with
_IPXE_WORD = re.compile(r"[^\s$]+")


def _one_line(value: Any, fmt: str) -> str:
    text = str(value)
    if _LINE_BREAKING.search(text):
        raise TemplateError(
            f"{text[:60]!r} holds a line break or control character and cannot be written "
            f"into {fmt}"
        )
    return text


def oneline(value: Any) -> str:
    """``value`` unchanged, refused if it could end the line it is written on."""
    return _one_line(value, "a line of this file")


def sh(value: Any) -> str:
    """One shell word (shlex.quote); refused if multi-line, since a %pre/%post body
    ends at a line the kickstart parser reads, whatever the shell would make of it."""
    return shlex.quote(_one_line(value, "a shell script"))


def ks(value: Any) -> str:
    """One kickstart command argument: as is when plain, else quoted for shlex.

    Kickstart commands are parsed with argparse, quoted or not: a value that
    starts with '-' is read as an option, and a bare '--' is dropped as the
    end-of-options marker, so no quoting can carry them; nor an empty value."""
    text = _one_line(value, "a kickstart command")
    if not text.strip():
        raise TemplateError("an empty value cannot be a kickstart command argument")
    if text.startswith("-"):
        raise TemplateError(
            f"{text[:60]!r} starts with '-': a kickstart command would read it as an option"
        )
    return text if _KS_PLAIN.fullmatch(text) else shlex.quote(text)


def debconf(value: Any) -> str:
    """A debconf (preseed) answer: one line, and no trailing backslash, which
    debconf-set-selections reads as a continuation that swallows the next line."""
    text = _one_line(value, "a preseed answer")
    if text.endswith("\\"):
        raise TemplateError(f"{text[:60]!r} ends in a backslash (a preseed line continuation)")
    return text


def word(value: Any) -> str:
    """One word of a line-based list (%packages, pkgsel/include): no blank or
    backslash, and not starting with '%' or '#' (would end the section, or comment)."""
    text = _one_line(value, "a list of words")
    if not text or any(c.isspace() or c == "\\" for c in text) or text[0] in "%#":
        raise TemplateError(
            f"{text[:60]!r} is not one word (blank, backslash, or starts with % or #)"
        )
    return text


def ipxe(value: Any) -> str:
    """One iPXE argument: refused if it holds a blank, '$' or a line break."""
    text = _one_line(value, "an iPXE script")
    if not _IPXE_WORD.fullmatch(text) or text in ("||", "&&"):
        raise TemplateError(f"{text[:60]!r} is not one iPXE argument (blanks, '$', '||', '&&')")
    return text


def ipxe_args(value: Any) -> str:
    """Blank-separated iPXE arguments (kernel_args), each checked as ``ipxe``."""
    words = _one_line(value, "an iPXE script").split()
    return " ".join(ipxe(word) for word in words)


def _json(value: Any) -> str:
    return json.dumps(value)


def _continued(text: str) -> str:
    """Non-empty lines joined into one debconf value with backslash continuations."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " \\\n    ".join(lines)


def _as_script(text: str, path: str) -> str:
    """A multi-line shell script as one debconf command value.

    The value writes the script to ``path`` with printf (one quoted argument per
    line, so nothing in it is expanded) and runs it with sh.
    """
    lines = text.rstrip("\n").splitlines()
    quoted = " \\\n    ".join(shlex.quote(line) for line in lines)
    return f"printf '%s\\n' \\\n    {quoted} \\\n    > {path} && sh {path}"


FILTERS: Mapping[str, Callable[..., Any]] = {
    "sh": sh,
    "shquote": sh,
    "ks": ks,
    "oneline": oneline,
    "word": word,
    "debconf": debconf,
    "ini": oneline,
    "ipxe": ipxe,
    "ipxe_args": ipxe_args,
    "yaml": _json,
    "tojson_plain": _json,
    "continued": _continued,
    "as_script": _as_script,
}


@lru_cache(maxsize=32)
def _environment(search_path: tuple[Path, ...]) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader([str(p) for p in search_path]),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        comment_start_string="<#",
        comment_end_string="#>",
        auto_reload=True,
    )
    env.filters.update(FILTERS)
    env.globals["snippet"] = _snippet
    return env


def environment(search_path: Sequence[Path]) -> SandboxedEnvironment:
    """A cached environment per search path (templates compile once)."""
    return _environment(tuple(Path(p) for p in search_path))


def render(search_path: Sequence[Path], template: str, context: Mapping[str, Any], who: str) -> str:
    """Render ``template`` with ``context``; ``who`` ("node ctl1") prefixes errors."""
    env = environment(search_path)
    node = context.get("node") or {}
    dirs = override_dirs(search_path, str(node.get("name", "")), str(node.get("role", "")))
    try:
        return env.get_template(template).render(**context, _override_dirs=dirs)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            f"{who}: template {exc.name} not found in {', '.join(map(str, search_path))}"
        ) from exc
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{who}: template {template}: {exc.message}") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"{who}: template {exc.name or template} line {exc.lineno}: {exc.message}"
        ) from exc
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"{who}: template {template}: unsafe operation: {exc}") from exc
    except TemplateError as exc:  # a filter refused a value (see sh, ks, ipxe)
        raise TemplateError(f"{who}: template {template}: {exc}") from exc
