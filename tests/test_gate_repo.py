"""Pull-request gating end to end in a scratch git repository: baseline the existing debt,
fail only on what a new commit adds, report (and prune) paid-off debt, gate on a diff.

Findings come from MLA002 (a .pt file of random bytes is unreadable, hence inconclusive),
so these tests need no other rule family.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from mlaudit.gitdiff import changed_since, parse_added_lines, restrict
from mlaudit.model import Finding, Location, Report, Severity, fingerprint

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

SCAN = ("scan", ".", "--isolated", "--select", "MLA")


def _git(repo: Path, *args: str) -> str:
    env_args = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    result = subprocess.run(["git", *env_args, *args], cwd=repo, capture_output=True, text=True, check=True)
    return result.stdout


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


def _debt(path: Path, seed: int) -> None:
    """A checkpoint-named file of random bytes: MLA002 inconclusive-input."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    path.write_bytes(bytes(rng.getrandbits(8) for _ in range(256)))


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("# demo\n")
    (root / "train.py").write_text("".join(f"step_{i} = {i}\n" for i in range(1, 6)))
    _debt(root / "models" / "a.pt", 1)
    _debt(root / "models" / "b.pt", 2)
    _commit(root, "debt")
    return root


def _findings(run_cli, repo: Path, *args: str) -> tuple[int, list[dict], str]:
    out = repo.parent / "report.json"
    code, stdout, err = run_cli(*SCAN, "--output", f"json={out}", *args, cwd=repo)
    assert code in (0, 1), err
    return code, json.loads(out.read_text())["findings"], stdout


def test_scratch_repo_baseline_new_finding_stale_entry_and_diff_base(run_cli, repo):
    # 1. Write a baseline of the existing debt: the run passes and records both files.
    code, out, err = run_cli(*SCAN, "--write-baseline", "mlaudit-baseline.json", cwd=repo)
    assert code == 0, out + err
    doc = json.loads((repo / "mlaudit-baseline.json").read_text())
    assert [(e["code"], e["path"], e["count"]) for e in doc["entries"]] == [
        ("MLA002", "models/a.pt", 1), ("MLA002", "models/b.pt", 1)
    ]
    _commit(repo, "baseline")
    code, findings, _ = _findings(run_cli, repo, "--baseline", "mlaudit-baseline.json")
    assert code == 0 and all(f["baselined"] for f in findings) and len(findings) == 2

    # 2. A new problem in a new commit: exit 1 with only the new finding gating.
    _debt(repo / "models" / "c.pt", 3)
    _commit(repo, "new debt")
    code, findings, _ = _findings(run_cli, repo, "--baseline", "mlaudit-baseline.json")
    new = [f for f in findings if not f["baselined"]]
    assert code == 1 and [(f["code"], f["location"]["path"]) for f in new] == [("MLA002", "models/c.pt")]
    sarif = repo.parent / "out.sarif"
    code, stdout, _ = run_cli(*SCAN, "--baseline", "mlaudit-baseline.json", "--output", f"sarif={sarif}",
                              cwd=repo)
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    assert code == 1 and [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                          for r in results] == ["models/c.pt"]
    assert "models/c.pt" in stdout and "models/a.pt" not in stdout  # text hides baselined ones

    # 3. Paying off old debt: the entry is reported as stale (MLA005), then pruned.
    _git(repo, "rm", "-q", "models/a.pt")
    _commit(repo, "fix a")
    code, findings, _ = _findings(run_cli, repo, "--baseline", "mlaudit-baseline.json")
    stale = [f for f in findings if f["code"] == "MLA005"]
    assert len(stale) == 1 and "models/a.pt" in stale[0]["message"]
    assert stale[0]["location"]["path"] == "mlaudit-baseline.json" and stale[0]["severity"] == "info"
    assert code == 1  # c.pt still gates; the stale entry alone would not (info)
    code, out, _ = run_cli(*SCAN, "--baseline", "mlaudit-baseline.json", "--update-baseline", cwd=repo)
    assert "1 stale entries pruned" in out
    doc = json.loads((repo / "mlaudit-baseline.json").read_text())
    assert [e["path"] for e in doc["entries"]] == ["models/b.pt"]
    _, findings, _ = _findings(run_cli, repo, "--baseline", "mlaudit-baseline.json")
    assert not [f for f in findings if f["code"] == "MLA005"]

    # 4. --diff-base: without a baseline, only the files changed since the ref gate.
    code, findings, stdout = _findings(run_cli, repo, "--diff-base", "HEAD~2")
    assert code == 1 and [f["location"]["path"] for f in findings] == ["models/c.pt"]
    code, findings, _ = _findings(run_cli, repo, "--diff-base", "HEAD")
    assert code == 0 and findings == []
    _debt(repo / "models" / "untracked.pt", 4)  # uncommitted work counts as changed
    _, findings, _ = _findings(run_cli, repo, "--diff-base", "HEAD")
    assert [f["location"]["path"] for f in findings] == ["models/untracked.pt"]


def test_diff_base_keeps_line_scoped_findings_only_on_changed_lines(repo, monkeypatch):
    lines = (repo / "train.py").read_text().splitlines()
    lines[2] = "step_3 = 33  # changed"
    (repo / "train.py").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(repo)
    changes = changed_since("HEAD", repo)
    assert changes.lines["train.py"] == {3}

    def finding(line: int | None, path: str = "train.py") -> Finding:
        return Finding("MLQ001", "x", Severity.ERROR, f"at {line}", Location(path, line=line),
                       fingerprint=fingerprint("MLQ001", path, None, str(line)))

    report = Report("t", (".",), (finding(3), finding(5), finding(None), finding(1, "models/b.pt")), 3, 0.0)
    kept = restrict(report, changes, repo)
    assert [f.location.line for f in kept.findings] == [3, None]
    assert "2 finding(s) outside" in kept.notes[-1]


def test_diff_base_unknown_ref_is_one_line_exit_2(run_cli, repo):
    code, _, err = run_cli(*SCAN, "--diff-base", "no-such-ref", cwd=repo)
    assert code == 2 and "--diff-base no-such-ref" in err and err.count("\n") == 1


def test_parse_added_lines_handles_new_deleted_and_pure_deletion_hunks():
    diff = (
        "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -2,0 +3,2 @@\n+a\n+b\n"
        "@@ -9 +10,0 @@\n-gone\n"
        "diff --git a/new.py b/new.py\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+x\n"
        "diff --git a/old.py b/old.py\n--- a/old.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
    )
    assert parse_added_lines(diff) == {"x.py": {3, 4}, "new.py": {1}}
