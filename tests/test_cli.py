"""CLI contract: exit codes, one-line errors, config precedence, JSON schema, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

SCHEMA = Path(__file__).resolve().parent.parent / "mlaudit" / "schemas" / "report.schema.json"


def _project_with_bad_checkpoint(tmp_path: Path) -> Path:
    (tmp_path / "broken.pt").write_bytes(b"\x80\x04 truncated pickle")
    return tmp_path


def test_version(run_cli):
    code, out, _ = run_cli("--version")
    assert code == 0 and out.startswith("mlaudit ")


def test_findings_fail_the_gate_and_exit_zero_overrides(run_cli, tmp_path):
    _project_with_bad_checkpoint(tmp_path)
    code, out, _ = run_cli("scan", tmp_path, "--isolated")
    assert code == 1 and "MLA002" in out and "Found 1 error" in out
    code, _, _ = run_cli("scan", tmp_path, "--isolated", "--exit-zero")
    assert code == 0


def test_fail_on_threshold(run_cli, tmp_path):
    _project_with_bad_checkpoint(tmp_path)
    (tmp_path / "mlaudit.yaml").write_text("severity:\n  MLA002: warning\n")
    assert run_cli("scan", tmp_path)[0] == 0  # warning < default fail-on error
    assert run_cli("scan", tmp_path, "--fail-on", "warning")[0] == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["scan", "--bogus"], "No such option"),
        (["scan", "--select", "MLZ9"], "unknown rule code or prefix 'MLZ9'"),
        (["scan", "--fail-on", "fatal"], "unknown severity"),
        (["scan", "--format", "xml"], "unknown format"),
        (["scan", "does/not/exist"], "no such file or directory"),
        (["rule", "MLX999"], "unknown rule"),
    ],
)
def test_usage_errors_are_one_line_exit_2(run_cli, tmp_path, args, needle):
    code, out, err = run_cli(*args, cwd=tmp_path)
    assert code == 2
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err + out


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("selct: [MLK]\n", "unknown key 'selct' (did you mean 'select'?)"),
        ("select: [MLQ999]\n", "unknown rule code or prefix 'MLQ999'"),
        ("fail-on: 3\n", "'fail-on' must be one of error, warning, info"),
        ("params:\n  MLA002: {nope: 1}\n", "MLA002 has no param 'nope'"),
        ("params:\n  MLZ001: {}\n", "unknown rule code 'MLZ001'"),
        ("select: [MLK\n", "invalid YAML"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_config_names_file_and_key(run_cli, tmp_path, content, needle):
    (tmp_path / "mlaudit.yaml").write_text(content)
    code, _, err = run_cli("scan", tmp_path)
    assert code == 2 and needle in err and "mlaudit.yaml" in err and err.count("\n") == 1


def test_pyproject_config_is_found_walking_up(run_cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.mlaudit]\nignore = ["MLA002"]\n')
    sub = tmp_path / "models"
    sub.mkdir()
    _project_with_bad_checkpoint(sub)
    assert run_cli("scan", sub)[0] == 0  # the ignore from the parent's pyproject applies
    assert run_cli("scan", sub, "--select", "MLA002", "--ignore", "MLA001")[0] == 0  # ignores add up
    assert run_cli("scan", sub, "--isolated")[0] == 1


def test_bad_toml_is_one_line(run_cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.mlaudit\nselect = 1\n")
    code, _, err = run_cli("scan", tmp_path, "--settings", tmp_path / "pyproject.toml")
    assert code == 2 and "invalid TOML" in err and err.count("\n") == 1


def test_json_output_validates_against_schema(run_cli, tmp_path):
    _project_with_bad_checkpoint(tmp_path)
    out_file = tmp_path / "out" / "report.json"
    # Only the meta rules: the project-level families would add their own findings here.
    code, out, _ = run_cli("scan", tmp_path, "--isolated", "--select", "MLA", "--format", "json",
                           "--output", out_file)
    assert code == 1 and "Report written" in out
    doc = json.loads(out_file.read_text())
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    [finding] = doc["findings"]
    assert finding["code"] == "MLA002" and len(finding["fingerprint"]) == 32
    assert doc["summary"]["counts"] == {"info": 0, "warning": 0, "error": 1}


def test_fingerprint_ignores_line_numbers():
    from mlaudit.model import fingerprint

    assert fingerprint("MLK001", "a/README.md", None) == fingerprint("MLK001", "a/README.md", None)
    assert fingerprint("MLK001", "a/README.md", None) != fingerprint("MLK001", "b/README.md", None)


def test_rules_and_rule_commands(run_cli):
    code, out, _ = run_cli("rules", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and {"MLA001", "MLA002"} <= {r["code"] for r in rows}
    code, out, _ = run_cli("rule", "inconclusive-input")
    assert code == 0 and "MLA002" in out and "Why is this bad?" in out


@pytest.mark.parametrize("argv", [["--help"], ["scan", "--help"], ["rules"]])
def test_cli_does_not_import_heavy_modules(argv):
    probe = (
        "import sys; from mlaudit.cli import main; import contextlib, io\n"
        f"with contextlib.redirect_stdout(io.StringIO()): main({argv!r})\n"
        "heavy = [m for m in ('torch', 'onnx', 'onnxruntime', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_python_dash_m_entry_point(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mlaudit", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("mlaudit")
