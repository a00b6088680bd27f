"""The table of external programs: the Makefile's lists, `doctor`, lookups and the audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.errors import ProgramMissing, ProvisionerError
from provisioner.programs import Program
from tests.program_audit import ProgramRecorder

REPO = Path(__file__).resolve().parents[2]
APT_BASE = {"python3", "python3-venv", "python3-pip", "make"}


def make_installs(target: str) -> set[str]:
    """The Debian packages `make TARGET` installs, from the real Makefile (apt-install
    replaced by echo, so nothing is installed)."""
    done = subprocess.run(
        [programs.path("make"), "-s", "-C", str(REPO), target, "APT_INSTALL=echo",
         f"PYTHON={sys.executable}"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return set(done.stdout.split())


def cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`provisioner ARGS` run the way a user does, in a folder with no site.yaml."""
    env = {**os.environ, "PROVISIONER_STATE_DIR": str(tmp_path / "no-state")}
    env.pop("PROVISIONER_SITE", None)
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(("use", "target"), [("demo", "deps-demo"), ("test", "deps-test"),
                                             ("bench", "deps-bench")])  # fmt: skip
def test_makefile_installs_exactly_the_packages_of_the_table(use: str, target: str) -> None:
    installed = make_installs(target)
    assert installed == set(programs.packages(use))
    assert installed >= APT_BASE  # the literal APT_BASE is in the table too


def test_the_table_runs_without_third_party_packages() -> None:
    """The Makefile runs it with the system python3, before the virtualenv exists."""
    done = subprocess.run(
        [sys.executable, "-S", "-m", "provisioner.programs", "packages", "demo"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == programs.packages("demo")


def test_doctor_lists_the_packages_make_installs_without_a_site_or_state(tmp_path: Path) -> None:
    for use, target in (("demo", "deps-demo"), ("test", "deps-test")):
        done = cli("doctor", "--for", use, "--json", tmp_path=tmp_path)
        data = json.loads(done.stdout)
        assert set(data["packages"]) == make_installs(target)
        assert done.returncode == (0 if data["ok"] else 1), done.stderr
    deps = cli("deps", "--for", "demo", tmp_path=tmp_path)
    assert deps.returncode == 0 and deps.stdout.split() == programs.packages("demo")
    assert not (tmp_path / "no-state").exists()  # no state store, no log file
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_doctor_json_shape(tmp_path: Path) -> None:
    done = cli("doctor", "--json", tmp_path=tmp_path)  # serve is the default use
    data = json.loads(done.stdout)
    assert set(data) == {"use", "ok", "programs", "missing", "packages", "fix"}
    assert data["use"] == "serve"
    names = [row["name"] for row in data["programs"]]
    assert {"dnsmasq", "ipxe.efi", "undionly.kpxe", "ssh"} <= set(names)
    assert "qemu-system-x86_64" not in names  # the lab's, not a provisioning host's
    for row in data["programs"]:
        assert set(row) == {"name", "kind", "package", "uses", "why", "path", "fix"}
        assert (row["path"] is None) == (row["fix"] is not None)
        if row["path"]:
            assert Path(row["path"]).exists()
    assert data["missing"] == [r["name"] for r in data["programs"] if r["path"] is None]
    assert data["ok"] == (not data["missing"]) == (done.returncode == 0)


def test_this_machine_has_what_make_test_installs() -> None:
    """`make test` installs deps-test first: after it, doctor --for test finds everything."""
    data = programs.report("test")
    assert data["ok"], data["fix"]


def test_a_missing_program_is_one_clear_error_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = tmp_path / "bin" / "pv-tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    fake = Program("pv-tool", "pv-tool-pkg", ("serve",), "the pv test")
    monkeypatch.setenv("PATH", f"{tool.parent}:/usr/bin")
    assert fake.path() == str(tool)
    monkeypatch.setenv("PATH", "/usr/bin")
    with pytest.raises(ProgramMissing) as caught:
        fake.path()
    assert isinstance(caught.value, ProvisionerError)
    assert str(caught.value) == (
        f"pv-tool is missing (looked in PATH and {programs.SYSTEM_PATH}); "
        "needed for the pv test; fix: apt-get install pv-tool-pkg"
    )


def test_sbin_is_searched_even_when_path_lacks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert programs.path("dnsmasq") in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq")


def test_a_missing_file_names_where_it_was_looked_for(tmp_path: Path) -> None:
    present = tmp_path / "fw.fd"
    present.write_bytes(b"\0")
    assert Program("fw", "pv-fw", ("demo",), "firmware", "file", (str(present),)).path() == str(
        present
    )
    gone = Program("fw", "pv-fw", ("demo",), "firmware", "file", (str(tmp_path / "no.fd"),))
    with pytest.raises(ProgramMissing, match=r"fw is missing \(looked in .*no\.fd\); "
                       r"needed for firmware; fix: apt-get install pv-fw$"):  # fmt: skip
        gone.path()


def test_console_scripts_come_from_this_environment_never_from_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = Path(programs.path("ksvalidator"))
    assert found.parent == Path(sys.executable).parent
    decoy = tmp_path / "pv-script"
    decoy.write_text("#!/bin/sh\n")
    decoy.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    script = Program("pv-script", "pv-dist", ("test",), "a test", "script")
    with pytest.raises(ProgramMissing) as caught:
        script.path()
    assert str(caught.value).endswith(f"fix: {sys.executable} -m pip install '.[test]'")


def test_command_resolves_every_program_an_argv_runs() -> None:
    argv = ["ip", "netns", "exec", "pv-ns", "env", "A=1", "timeout", "-s", "KILL", "5",
            "dig", "+short", "x"]  # fmt: skip
    resolved = programs.command(argv)
    assert resolved[0] == programs.path("ip")
    assert resolved[4] == programs.path("env")
    assert resolved[6] == programs.path("timeout")
    assert resolved[10] == programs.path("dig")
    assert [resolved[i] for i in (1, 2, 3, 5, 7, 8, 9, 11, 12)] == [
        "netns", "exec", "pv-ns", "A=1", "-s", "KILL", "5", "+short", "x"
    ]  # fmt: skip
    assert programs.command([sys.executable, "-c", "pass"])[0] == sys.executable  # a path: kept
    assert programs.programs_run(["ip", "-n", "pv-ns", "link"]) == ["ip"]  # not a wrapper here


def test_a_program_missing_from_the_table_is_refused() -> None:
    with pytest.raises(programs.UnknownProgram, match="pv-unlisted: not in the table"):
        programs.command(["pv-unlisted", "--help"])


def test_uses_include_each_other_as_documented() -> None:
    serve, demo = set(programs.packages("serve")), set(programs.packages("demo"))
    test, bench = set(programs.packages("test")), set(programs.packages("bench"))
    assert serve <= demo <= test and demo <= bench
    assert {"ipxe", "ipxe-qemu", "qemu-system-x86", "busybox-static"} <= demo  # issue 13
    assert {"nginx", "tftpd-hpa"} <= bench - test
    for program in programs.TABLE:
        assert program.package and program.why, program
        assert set(program.uses) <= set(programs.USES), program


def test_report_of_a_table_with_a_missing_entry(tmp_path: Path) -> None:
    table = (
        Program("sh", "dash", ("serve",), "hooks"),
        Program("pv-absent", "pv-pkg", ("serve",), "a test"),
        Program("pv-script", "pv-dist", ("test",), "a test", "script"),
    )
    data = programs.report("test", table)
    assert not data["ok"] and data["missing"] == ["pv-absent", "pv-script"]
    assert data["fix"] == [
        "apt-get install pv-pkg",
        f"{sys.executable} -m pip install '.[test]'",
    ]
    text = programs.render_report(data)
    assert "  ok       sh" in text
    assert "  MISSING  pv-absent  apt-get install pv-pkg  (a test)" in text
    assert text.endswith("  apt-get install pv-pkg\n  " + data["fix"][1])
    assert programs.packages("serve", table) == ["dash", "pv-pkg"]


def test_no_program_lookup_outside_the_table() -> None:
    """Static: shutil.which belongs to provisioner/programs.py alone."""
    needle = "shutil." + "which("
    offenders = [
        str(path.relative_to(REPO))
        for folder in ("provisioner", "tests", "benchmarks")
        for path in (REPO / folder).rglob("*.py")
        if needle in path.read_text() and path != REPO / "provisioner" / "programs.py"
    ]
    assert offenders == []


def test_recorder_names_the_programs_an_argv_runs(tmp_path: Path) -> None:
    recorder = ProgramRecorder()
    recorder.record(["ip", "netns", "exec", "pv-ns", "pv-unlisted", "-x"])
    recorder.record([sys.executable, "-m", "provisioner"])  # the interpreter: not a package
    recorder.record([str(tmp_path / "hook.sh")])  # made by a test
    recorder.record([str(REPO / "hooks" / "common" / "10-record-context")])  # the project's own
    recorder.record(["/usr/sbin/named", "-g"])
    assert set(recorder.seen) == {"ip", "pv-unlisted", "named"}
    assert set(recorder.unknown()) == {"pv-unlisted"}


def test_a_session_that_runs_an_unlisted_program_fails(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            """
            import subprocess
            from provisioner import programs

            def test_listed():
                subprocess.run([programs.path("true")], check=True)

            def test_unlisted():
                try:
                    subprocess.run(["pv-unlisted-program"])
                except FileNotFoundError:
                    pass
            """
        )
    )

    def inner(*select: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "tests.program_audit",
             "-p", "no:cacheprovider", "-c", str(tmp_path / "pytest.ini"),
             "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py"), *select],
            capture_output=True, text=True, timeout=120, cwd=REPO,
            env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},  # faster start
        )  # fmt: skip

    clean = inner("-k", "test_listed")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "programs missing" not in clean.stdout
    failed = inner()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "2 passed" in failed.stdout  # every test passed; the run still fails
    assert "programs missing from provisioner/programs.py" in failed.stdout
    assert "pv-unlisted-program: started by test_inner.py::test_unlisted" in failed.stdout


def test_a_script_of_another_extra_says_which_extra_installs_it() -> None:
    validator = programs.entry("oslo-config-validator")
    assert validator.kind == "script" and "test" in validator.uses
    assert validator.fix.endswith("-m pip install '.[openstack]'")
    missing = Program(
        "no-such-validator", "oslo.config", ("test",), "x", "script", extra="openstack"
    )
    assert programs.report("test", (missing,))["fix"] == [
        f"{sys.executable} -m pip install '.[openstack]'"
    ]
