"""Unit tests for the repo-level rules' parsers and the git input (fixture cases cover the
rules end to end; these pin down the pieces the cases cannot isolate)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.gen.repo_cases import commit_all, init, write
from mlaudit.checks._text import headings, prose_words, split_front_matter
from mlaudit.checks.dependencies import _conda_spec, _pep508, _poetry_pinned
from mlaudit.checks.docs import card_sections
from mlaudit.checks.tests_ci import module_names, scan_imports
from tests.casekit import ROOT


def test_headings_cover_atx_setext_rst_bold_and_skip_code():
    text = "# Title\n\nIntro\n=====\n\n```\n# not a heading\n```\n**Usage**\n\nSetup\n-----\n"
    assert [h.text for h in headings(text)] == ["title", "intro", "usage", "setup"]


def test_prose_words_ignore_code_urls_and_comments():
    text = "Hello world. <!-- hidden words here -->\n```\nmany code words here\n```\nSee https://x.y/z [docs](https://a.b)."
    assert prose_words(text) == 4  # Hello, world, See, docs


def test_model_card_front_matter_counts():
    meta, body, offset = split_front_matter("---\nlicense: mit\ndatasets: [imdb]\n---\n# Card\n## Uses\n")
    assert meta["license"] == "mit" and offset == 4 and "# Card" in body
    covered = card_sections("---\nlicense: mit\ndatasets: [imdb]\n---\n# Card\n## Uses\nReviews only.\n")
    assert covered == {"license", "training-data", "intended-use"}
    # a heading with nothing under it covers nothing (the untouched template)
    assert card_sections("# Card\n## Uses\n[More Information Needed]\n") == set()


def test_how_to_use_is_not_intended_use():
    assert "intended-use" not in card_sections("# Card\n## How to use\nRun it.\n")
    assert "intended-use" in card_sections("# Card\n## Intended uses & limitations\nReviews only.\n")


def test_requirement_pins():
    assert _pep508("torch==2.3.1") == ("torch", True)
    assert _pep508("torch==2.*") == ("torch", False)
    assert _pep508("Torch>=2; python_version>'3.8'") == ("torch", False)
    assert _pep508("torch @ https://example.com/torch-2.3.1.whl") == ("torch", True)
    assert _poetry_pinned("2.3.1") and _poetry_pinned({"version": "==2.3.1"})
    assert not _poetry_pinned("^2.3") and not _poetry_pinned("*")
    assert _conda_spec("pytorch::pytorch=2.3.1") == ("torch", True)
    assert _conda_spec("pytorch=2.3") == ("torch", False)
    assert _conda_spec("pytorch==2.3.1") == ("torch", True)


def test_test_imports_are_parsed_not_run():
    info = scan_imports(
        "import os\nfrom ..model import Net\nimport importlib\nm = importlib.import_module('pkg.train')\n"
        "raise SystemExit('must not run')\n",
        "pkg/tests/test_x.py",
    )
    assert info is not None and {"pkg.model", "pkg.model.Net", "pkg.train"} <= info.modules
    assert not info.loads_checkpoint
    assert scan_imports("def broken(:\n", "tests/test_y.py") is None
    assert scan_imports("import torch\nsd = torch.load('m.pt')\n", "tests/t.py").loads_checkpoint


def test_module_names_follow_layout():
    assert module_names("src/pkg/model.py", {"src/pkg"}) == {"src.pkg.model", "pkg.model"}
    assert module_names("scripts/train.py", set()) == {"scripts.train", "train"}


def _scan(run_cli, tmp_path: Path, target: Path, *args: str) -> list[dict]:
    out = tmp_path / "report.json"
    code, _, err = run_cli("scan", target, "--isolated", "--format", "json", "--output", out, *args)
    assert code in (0, 1), err
    return json.loads(out.read_text())["findings"]


def test_git_rules_silent_outside_git(run_cli, tmp_path):
    project = tmp_path / "p"
    write(project / "models" / "model.pt", b"\x00" * 2048)
    findings = _scan(run_cli, tmp_path, project, "--select", "MLV001,MLV002,MLA")
    # The fake checkpoint itself is inconclusive for the checkpoint reader; git adds nothing.
    assert findings and all("checkpoint" in f["message"] and "git" not in f["message"] for f in findings)


def test_subdirectory_scan_sees_only_its_own_files(run_cli, tmp_path):
    repo = init(tmp_path / "repo")
    write(repo / "big.pt", b"\x01" * 4096)  # outside the scanned folder
    write(repo / "sub" / "model.pt", b"\x02" * 2048)
    commit_all(repo, "models")
    findings = _scan(run_cli, tmp_path, repo / "sub", "--select", "MLV001")
    paths = sorted(f["location"]["path"] for f in findings)
    assert len(paths) == 1 and paths[0].endswith("model.pt") and "big.pt" not in paths[0]


def test_untracked_artifact_in_repo_is_not_reported(run_cli, tmp_path):
    repo = init(tmp_path / "repo")
    write(repo / "README.md", "# r\n")
    commit_all(repo, "readme")
    write(repo / "model.pt", b"\x03" * 2048)
    assert _scan(run_cli, tmp_path, repo, "--select", "MLV001") == []


@pytest.mark.parametrize("target", ["fixtures/build/sample_project", "fixtures/cases/MLK004/fire"])
def test_docs_only_scan_does_not_import_torch(target):
    probe = (
        "import sys, contextlib, io\nfrom mlaudit.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): main(['scan', {target!r}, '--isolated', "
        "'--select', 'MLK,MLX,MLV,MLR', '--exit-zero'])\n"
        "print(','.join(m for m in ('torch', 'onnx', 'onnxruntime', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == ""


def test_missing_git_executable_is_inconclusive(run_cli, tmp_path, monkeypatch):
    repo = init(tmp_path / "repo")
    write(repo / "README.md", "# r\n")
    commit_all(repo, "readme")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    findings = _scan(run_cli, tmp_path, repo, "--select", "MLV001,MLA002")
    assert [(f["code"], f["location"]["path"]) for f in findings] == [("MLA002", ".")]
    assert "no `git` executable" in findings[0]["message"]
