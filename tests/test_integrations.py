"""The CI integrations are data: check that they parse and say what the README promises."""

from __future__ import annotations

import re

import yaml

from tests.casekit import ROOT

HOOK_FILES = ["models/net.pt", "models/NET.SAFETENSORS", "configs/train.yaml", "ckpt.onnx", "a/b.json"]
NOT_HOOK_FILES = ["train.py", "README.md", "data.csv"]


def test_pre_commit_hooks_scan_checkpoints_and_configs():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"mlaudit", "mlaudit-system"}
    for hook in hooks:
        assert hook["entry"] == "mlaudit scan" and hook["language"] in {"python", "system"}
        pattern = re.compile(hook["files"])
        assert all(pattern.search(p) for p in HOOK_FILES)
        assert not any(pattern.search(p) for p in NOT_HOOK_FILES)


def test_action_installs_the_core_from_its_checkout_runs_scan_and_uploads_sarif():
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    scripts = [s.get("run", "") for s in steps]
    install = next(i for i, s in enumerate(scripts) if "pip install" in s)
    # the core install from the action's own checkout: no torch, no package index
    assert scripts[install].split("pip install")[1].split() == [
        "--disable-pip-version-check", "--quiet", '"$GITHUB_ACTION_PATH"']
    assert "torch" not in scripts[install] and "package" not in action["inputs"]
    scan = next(i for i, s in enumerate(scripts) if "mlaudit scan" in s)
    assert install < scan and "sarif=" in scripts[scan] and "${{" not in scripts[scan]
    upload = next(i for i, s in enumerate(steps) if "upload-sarif" in s.get("uses", ""))
    assert scan < upload and "always()" in steps[upload]["if"]
    assert all("shell" in s for s in steps if "run" in s)  # composite steps must name a shell
    assert {"args", "sarif-file", "upload-sarif"} <= set(action["inputs"])


def test_readme_ci_yaml_blocks_parse_and_the_workflow_uploads_sarif():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Using mlaudit in CI", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) >= 4
    docs = [yaml.safe_load(b) for b in blocks if not b.startswith(" ")]
    workflow = next(d for d in docs if isinstance(d, dict) and "jobs" in d)
    steps = workflow["jobs"]["mlaudit"]["steps"]
    assert any("upload-sarif" in s.get("uses", "") for s in steps)
    assert workflow["permissions"]["security-events"] == "write"
    gitlab = next(d for d in docs if isinstance(d, dict) and "mlaudit" in d and "script" in d["mlaudit"])
    assert set(gitlab["mlaudit"]["artifacts"]["reports"]) == {"codequality", "junit"}
