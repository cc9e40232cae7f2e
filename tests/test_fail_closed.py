"""Issue 11, "fail closed, never destroy": every named case of fixtures/gen/fail_closed.py gets the
verdict it is owed (named directly and in a directory scan), unreadable entries of a directory
scan are MLA002 and the scan goes on, and `mlaudit fix` never deletes what it did not write,
including after SIGTERM and SIGKILL."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.gen.fail_closed import CASES, scan_project, write_cases

ROOT = Path(__file__).resolve().parent.parent
MLAUDIT = [sys.executable, "-m", "mlaudit"]


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("fail_closed")
    canary = root / "CANARY"
    paths = write_cases(root, canary)
    yield root, paths
    assert not canary.exists(), "a payload ran"


def _scan(run_cli, target: Path, tmp: Path, *extra: str) -> tuple[int, list[dict], list[dict], str]:
    out = tmp / "report.json"
    out.unlink(missing_ok=True)
    code, _, err = run_cli("scan", target, "--isolated", "--format", "json", "--output", out, *extra)
    if code == 2:
        return code, [], [], err
    doc = json.loads(out.read_text())
    return code, doc["findings"], doc["artifacts"], err


def _errors(findings: list[dict], name: str | None = None) -> set[str]:
    return {
        f["code"]
        for f in findings
        if f["severity"] == "error" and (name is None or f["location"]["path"].split("/")[-1] == name)
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_case_named_directly_gets_its_verdict(cases, run_cli, tmp_path, name):
    _root, paths = cases
    case = CASES[name]
    code, findings, artifacts, err = _scan(run_cli, paths[name], tmp_path, "--select", "MLS,MLA")
    assert "Traceback" not in err and "internal error" not in err, err
    errors = _errors(findings)
    if case.expect == "unsafe":
        assert code == 1 and errors & {"MLS001", "MLS002"}, (name, code, errors, err)
    elif case.expect == "clean":
        assert code == 0 and not errors, (name, code, findings)
        assert artifacts and artifacts[0]["details"]["verdict"] == "clean"
        assert artifacts[0]["details"]["tensors"] > 0
    elif case.expect == "inconclusive":
        # read but not clean (MLA002), or not readable at all (exit 2, one line): never clean
        assert (code == 1 and "MLA002" in errors) or (code == 2 and len(err.strip().splitlines()) == 1), (
            name, code, errors, err,
        )  # fmt: skip
    else:  # "scanned": a file the user names is read whatever its extension
        assert artifacts and artifacts[0]["kind"] == "checkpoint", (name, artifacts)
        assert artifacts[0]["details"]["format"] == "torchscript"


def test_payload_before_a_parse_error_is_named_beside_the_error(cases, run_cli, tmp_path):
    _root, paths = cases
    for name in ("payload_before_bad_opcode.pkl", "payload_before_bad_opcode.pt"):
        code, findings, _, _ = _scan(run_cli, paths[name], tmp_path, "--select", "MLS,MLA")
        assert code == 1
        by_code = {f["code"]: f["message"] for f in findings if f["severity"] == "error"}
        assert "system" in by_code["MLS001"], by_code  # os.system pickles as posix.system
        assert "cannot be fully parsed" in by_code["MLA002"], by_code


def test_bundles_are_opened_in_a_directory_scan(cases, run_cli, tmp_path):
    root, paths = cases
    code, findings, artifacts, err = _scan(run_cli, root, tmp_path, "--select", "MLS,MLA")
    assert code == 1, err
    for name, case in CASES.items():
        errors = _errors(findings, name)
        if case.expect == "unsafe":
            assert errors & {"MLS001", "MLS002"}, (name, errors)
        elif case.expect == "inconclusive":
            assert "MLA002" in errors, (name, errors)
        elif case.expect == "clean":
            assert not errors, (name, errors)
    listed = {a["path"].split("/")[-1]: a["details"] for a in artifacts if a["kind"] == "checkpoint"}
    assert listed["bundle_zip_clean.zip"]["tensors"] == 5
    assert listed["model.jit"]["format"] == "torchscript"


def test_bytes_read_two_ways_the_stricter_reading_decides():
    """A file that validates as safetensors AND starts like a pickle is also scanned as the
    pickle torch.load would run; if that reading parses, it decides and the file says so.
    (A real polyglot needs a header length whose high bytes are opcodes, i.e. a file of
    petabytes, so the second reading is exercised on its own here.)"""
    from mlaudit.inputs.checkpoint.readers import _second_reading_as_pickle
    from mlaudit.inputs.checkpoint.types import Parsed

    out = Parsed("safetensors")
    _second_reading_as_pickle(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R.", out)
    assert [i.target for i in out.issues if i.is_error] == ["os.system"]
    assert "read two ways" in out.inconclusive[0] and "stricter reading decides" in out.inconclusive[0]
    benign = Parsed("safetensors")
    _second_reading_as_pickle(b"\x80\x02\x00\x00\x00\x00\x00\x00{}", benign)  # PROTO 2, then opcode 0x00
    assert benign.issues == [] and benign.inconclusive == [] and "is none" in benign.notes[0]


def _drop_dac_caps() -> None:
    """In the child, as root: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding
    set before exec, so file permissions apply to it as to any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP


def test_unreadable_entries_are_mla002_and_the_scan_goes_on(tmp_path):
    project = tmp_path / "proj"
    paths = scan_project(project)
    locked = [paths[k] for k in ("py", "yaml", "ipynb", "readme", "dir")]
    for p in locked:
        p.chmod(0)
    try:
        proc = subprocess.run(
            [*MLAUDIT, "scan", str(project), "--isolated", "--format", "json"],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
            preexec_fn=_drop_dac_caps if os.geteuid() == 0 else None,
        )  # fmt: skip
    finally:
        for p in locked:
            p.chmod(0o755 if p.is_dir() else 0o644)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    mla002 = {f["location"]["path"] for f in findings if f["code"] == "MLA002"}
    assert mla002 == {"secret.py", "config.yaml", "analysis.ipynb", "README.md", "models"}, mla002
    # the scan went on: the PEP 263 latin-1 file was decoded and its torch.load seen
    assert any(f["code"] == "MLS101" and f["location"]["path"] == "legacy_loader.py" for f in findings)


def test_symlink_loop_named_directly_has_its_own_message(tmp_path):
    loop = tmp_path / "loop.pt"
    loop.symlink_to(loop)
    proc = subprocess.run(
        [*MLAUDIT, "scan", str(loop), "--isolated"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"mlaudit: error: {loop}: symlink loop (the link resolves to itself)"
    ]


# --- fix never destroys ---------------------------------------------------------------------------


def _checkpoint(path: Path, mb: int = 1) -> Path:
    import torch

    torch.manual_seed(0)
    n = max(1, mb * 1024 * 1024 // (4 * 1024 * 256))
    torch.save({f"l{i}.weight": torch.randn(1024, 256) for i in range(n)}, path)
    return path


def test_force_never_replaces_what_mlaudit_did_not_write(tmp_path, run_cli, monkeypatch):
    (tmp_path / "in").mkdir()
    model = _checkpoint(tmp_path / "in" / "m.pt")
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    (work / "precious.txt").write_text("mine")
    # --out . : the current directory
    code, _, err = run_cli("fix", model, "--apply", "safetensors", "--out", ".", "--force", cwd=work)
    assert code == 2 and "current directory" in err
    # a parent of the current directory, and the home directory
    args = ("fix", model, "--apply", "safetensors", "--force", "--out")
    code, _, err = run_cli(*args, tmp_path / "a", cwd=work)
    assert code == 2 and "contains it" in err
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    code, _, err = run_cli("fix", model, "--apply", "safetensors", "--out", tmp_path / "home", "--force")
    assert code == 2 and "home directory" in err
    code, _, err = run_cli("fix", model, "--apply", "safetensors", "--out", "/", "--force")
    assert code == 2 and "choose a new directory" in err  # "/" always contains the input too
    # an existing directory without the marker
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine too")
    code, _, err = run_cli("fix", model, "--apply", "safetensors", "--out", user, "--force")
    assert code == 2 and "no mlaudit marker" in err
    assert (work / "precious.txt").read_text() == "mine" and (user / "notes.txt").read_text() == "mine too"
    # what an earlier fix wrote is replaced
    out = tmp_path / "fixed"
    assert run_cli("fix", model, "--apply", "safetensors", "--out", out)[0] == 0
    assert run_cli("fix", model, "--apply", "safetensors", "--out", out, "--force")[0] == 0
    assert (out / "m.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".fixed")) == []


def _start_fix(model: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*MLAUDIT, "fix", str(model), "--apply", "safetensors", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip


def _wait_for_workdir(proc: subprocess.Popen, out: Path, timeout: float = 120.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(out.parent.glob(f".{out.name}.partial-*"))
        if found and proc.poll() is None:
            time.sleep(0.3)  # let it write into the work directory
            assert proc.poll() is None, "the fix finished before it could be interrupted"
            return found[0]
        assert proc.poll() is None, f"the fix ended early: {proc.stderr.read() if proc.stderr else ''}"
        time.sleep(0.01)
    raise AssertionError("no work directory appeared")


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


TERMINATED_LINE = "mlaudit: terminated (SIGTERM); nothing written"


def test_sigterm_cleans_up_and_exits_143(tmp_path):
    model = _checkpoint(tmp_path / "m.pt", mb=48)
    out = tmp_path / "fixed"
    proc = _start_fix(model, out)
    _wait_for_workdir(proc, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == [TERMINATED_LINE], err
    assert _leftovers(out) == [] and not out.exists()


def test_sigterm_at_any_moment_of_a_fix_is_one_line_and_leaves_nothing(tmp_path):
    """SIGTERM sent at spread-out moments of a whole fix (process start, imports, reading, the
    safetensors step, verification, measuring, the reports, interpreter exit): while the fix
    command runs, it cleans up and exits 143 with one line; outside it (Python starting, before
    anything is written; or exiting, after the complete output is in place) the default action
    ends the process (the shell's 143), silently. Never exit 0 or 2, never a partial output or
    a leftover."""
    model = _checkpoint(tmp_path / "m.pt", mb=8)
    out = tmp_path / "fixed"
    started = time.monotonic()
    whole = subprocess.run([*MLAUDIT, "fix", str(model), "--apply", "safetensors", "--out", str(out)],
                           capture_output=True, text=True, cwd=ROOT, timeout=600)  # fmt: skip
    assert whole.returncode == 0, whole.stderr
    span = time.monotonic() - started
    seen = set()
    for i in range(6):
        target = tmp_path / f"fixed{i}"
        proc = _start_fix(model, target)
        time.sleep(span * (i + 0.5) / 7)
        if proc.poll() is not None:  # this run was faster than the timed one: no signal to test
            assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
            continue
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
        seen.add(proc.returncode)
        assert proc.returncode in (143, -signal.SIGTERM), (i, proc.returncode, err)
        if proc.returncode == 143:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("mlaudit: terminated (SIGTERM)"), err
            if lines[0] != TERMINATED_LINE:  # after the last safe point: the output is complete
                assert (target / "m.safetensors").is_file() and (target / "fix-report.json").is_file()
            else:
                assert not target.exists()
        else:
            assert err == "", err
            complete = {"m.safetensors", "fix-report.json", "fix-report.md", "fix-report.html"}
            assert not target.exists() or complete <= {p.name for p in target.iterdir()}
        assert _leftovers(target) == [], (i, _leftovers(target))
    assert 143 in seen, "no SIGTERM landed while the fix ran"


def test_sigkill_leftovers_are_removed_by_the_next_run(tmp_path):
    model = _checkpoint(tmp_path / "m.pt", mb=48)
    out = tmp_path / "fixed"
    proc = _start_fix(model, out)
    workdir = _wait_for_workdir(proc, out)
    proc.kill()  # SIGKILL: no clean-up can run
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert workdir.is_dir() and (workdir / ".mlaudit-fix").is_file(), "the kill left nothing to test"
    # a directory beside it that mlaudit did not write is never touched
    foreign = tmp_path / f".{out.name}.partial-notours"
    foreign.mkdir()
    (foreign / "data").write_text("x")
    again = subprocess.run(
        [*MLAUDIT, "fix", str(model), "--apply", "safetensors", "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert _leftovers(out) == [foreign.name]
    assert (out / "m.safetensors").is_file()


def test_sigterm_is_recorded_and_acted_on_only_at_safe_points():
    """The handler only records SIGTERM (an exception raised from it lands at any bytecode: inside
    an import, a half-imported numpy; inside code that catches it, a fix that went on and exited
    0). `raise_if_terminated` ends the fix; arriving after the last safe point, leaving the block
    still ends it; an error unwinding the fix after SIGTERM is still the termination."""
    from mlaudit.fixers import outdir

    reached = []
    with pytest.raises(outdir.Terminated):
        with outdir.sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # a real signal, delivered here: nothing is raised mid-work
            reached.append("after the signal")
            assert outdir.terminated()
            outdir.raise_if_terminated()
            reached.append("past the safe point")
    assert reached == ["after the signal"]
    with pytest.raises(outdir.Terminated):  # after the last safe point
        with outdir.sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
    with pytest.raises(outdir.Terminated):
        with outdir.sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            raise AttributeError("a step failing as the process is being stopped")
    with pytest.raises(AttributeError):  # without SIGTERM an error stays what it is
        with outdir.sigterm_as_interrupt():
            raise AttributeError("plain bug")
    with outdir.sigterm_as_interrupt():  # a new block starts unsignalled
        outdir.raise_if_terminated()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
