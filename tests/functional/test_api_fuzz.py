"""The daemon's REST API fuzzed with schemathesis from its own OpenAPI spec.

Against the running daemon of a loopback sim lab (real serve, BIND and virtual
BMCs), so generated operations really run; the check is that no request gets
a server error and every answer matches the spec.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from provisioner import programs
from tests.functional.pipeline_lab import sim_lab


def schemathesis_config(work: Path) -> Path:
    """A config that keeps everything schemathesis stores inside ``work``.

    By default it writes a crash cache under ``./.schemathesis``, reports under
    ``./schemathesis-report`` and Hypothesis examples under ``./.hypothesis``:
    into the checkout. It is also run from ``work``, for anything not named here.
    """
    work.mkdir(parents=True, exist_ok=True)
    config = work / "schemathesis.toml"
    places = {"cache": ("directory", "cache"), "reports": ("directory", "report"),
              "generation": ("database", "examples")}  # fmt: skip
    config.write_text("".join(
        f"[{table}]\n{key} = {json.dumps(str(work / name))}\n"
        for table, (key, name) in places.items()
    ))  # fmt: skip
    return config


def test_rest_api_has_no_server_error_under_schemathesis(tmp_path: Path) -> None:
    work = tmp_path / "schemathesis"
    config = schemathesis_config(work)
    with sim_lab(tmp_path) as lab:
        daemon = (lab.state / "daemon.json").read_text()
        url = json.loads(daemon)["url"]
        token = (lab.state / "api.token").read_text().strip()
        st = programs.path("schemathesis")
        run = subprocess.run(
            [st, "--config-file", str(config),
             "run", f"{url}/api/v1/doc/openapi.json", "--url", url,
             "-H", f"Authorization: Bearer {token}",
             "-c", "not_a_server_error,status_code_conformance,response_schema_conformance",
             "-n", "25", "--request-timeout", "30"],
            capture_output=True, text=True, timeout=600, cwd=work,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert token not in run.stdout  # not echoed back by any answer
