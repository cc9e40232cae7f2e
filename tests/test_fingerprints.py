"""Fingerprints come from the project root, never the working directory; fix hints run as
written from wherever mlaudit was started."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import torch


def _project(root: Path) -> Path:
    """A project with a torch pickle checkpoint (MLS004 fires, its hint names the file)."""
    (root / "models").mkdir(parents=True)
    (root / "sub").mkdir()
    torch.save({"w": torch.zeros(3), "b": torch.ones(2)}, root / "models" / "m.pt")
    return root


def _scan(run_cli, cwd: Path, target: str) -> list[dict]:
    code, out, err = run_cli("scan", target, "--isolated", "--select", "MLS004", "--format", "json",
                             "--exit-zero", cwd=cwd)
    assert code == 0, err
    findings = json.loads(out)["findings"]
    assert len(findings) == 1, findings
    return findings


def _hint_path(finding: dict) -> str:
    # "mlaudit fix <path> --apply safetensors"
    words = shlex.split(finding["fix_hint"])
    assert words[:2] == ["mlaudit", "fix"] and words[3:] == ["--apply", "safetensors"], words
    return words[2]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_same_scan_from_three_directories_in_a_git_project(run_cli, tmp_path):
    repo = _project(tmp_path / "repo")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    runs = {
        "repo root": (repo, "."),
        "above the repo": (tmp_path, "repo"),
        "a subdirectory": (repo / "sub", ".."),
        "scanning only models/": (repo, "models"),
    }
    results = {name: _scan(run_cli, cwd, target)[0] for name, (cwd, target) in runs.items()}
    assert len({f["fingerprint"] for f in results.values()}) == 1, results
    for name, (cwd, _) in runs.items():
        hinted = (cwd / _hint_path(results[name])).resolve()
        assert hinted == (repo / "models" / "m.pt").resolve(), (name, results[name]["fix_hint"])


def test_same_scan_from_two_directories_without_git(run_cli, tmp_path):
    # No git work tree: the scanned directory is the project root.
    project = _project(tmp_path / "proj")
    (tmp_path / "elsewhere").mkdir()
    inside = _scan(run_cli, project, ".")[0]
    outside = _scan(run_cli, tmp_path / "elsewhere", "../proj")[0]
    assert inside["fingerprint"] == outside["fingerprint"]
    assert _hint_path(inside) == "models/m.pt"
    assert (tmp_path / "elsewhere" / _hint_path(outside)).resolve() == (project / "models" / "m.pt").resolve()
