"""Size and depth limits on JSON request bodies, checked before anything parses them.

Python's json parser recurses once per nested array or object, so a body of
100,000 ``[`` raises RecursionError inside whatever parses it first (Flask's
``get_json``, spectree's validation), which Flask answers with a 500. The
depth is counted here on the raw bytes, outside strings, without recursion:
a request too deep is answered 400 and a body too large 413, both as JSON,
before any route runs. Shared by the boot server and the admin API (the daemon
imports it from here, a layer below).
"""

from __future__ import annotations

import re

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

#: The largest body either server accepts (callbacks and API requests are small).
MAX_JSON_BYTES = 1 << 20
#: Far deeper than any request these servers take, far shallower than the recursion limit.
MAX_JSON_DEPTH = 32

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in ``body`` (0 for a scalar).

    Malformed JSON gets a number too; the parser that runs afterwards refuses it.
    """
    brackets = _STRING.sub(b"", body).translate(None, _BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def install(app: Flask, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Make ``app`` refuse bodies over ``max_bytes`` (413) or nested over ``max_depth`` (400)."""
    app.config["MAX_CONTENT_LENGTH"] = max_bytes

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_: RequestEntityTooLarge) -> tuple[Response, int]:
        return jsonify(error=f"request body larger than {max_bytes} bytes"), 413

    @app.before_request
    def _check_depth() -> tuple[Response, int] | None:
        if request.method not in ("POST", "PUT", "PATCH"):
            return None
        body = request.get_data(cache=True)  # kept for the route's get_json
        if json_depth(body) > max_depth:
            return jsonify(error=f"request body nested deeper than {max_depth} levels"), 400
        return None
