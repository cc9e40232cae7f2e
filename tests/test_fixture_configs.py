"""Configs inside test folders are fixtures (parser inputs with deliberately odd values): a
directory scan keeps config rules off them; named on the command line, they are configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlaudit.inputs.repo import classify

BAD = "optimizer: adam\nlr: 0.1\n"  # MLT005 fires on it (fixtures/cases/MLT005/fire_mlaudit)


@pytest.mark.parametrize("rel", ["tests/fixtures/train.yaml", "pkg/test/cases/a.json",
                                 "fixtures/cases/MLT005/fire/config.yaml", "testing/hf.yml"])
def test_configs_in_test_folders_are_fixtures(rel):
    assert classify(rel) == "fixture"


@pytest.mark.parametrize("rel", ["configs/train.yaml", "latest/train.yaml", "contest/train.yaml",
                                 "train_test.yaml"])
def test_other_configs_stay_configs(rel):
    assert classify(rel) == "config"


def _codes(run_cli, tmp_path: Path, target: str) -> list[str]:
    out = tmp_path / "report.json"
    code, _, err = run_cli("scan", target, "--isolated", "--select", "MLT005", "--format", "json",
                           "--output", out, cwd=tmp_path)
    assert code in (0, 1), err
    return [f["location"]["path"] for f in json.loads(out.read_text())["findings"]]


def test_fixture_silent_in_a_scan_but_checked_when_named(run_cli, tmp_path):
    (tmp_path / "proj" / "tests" / "fixtures").mkdir(parents=True)
    (tmp_path / "proj" / "configs").mkdir()
    (tmp_path / "proj" / "tests" / "fixtures" / "train.yaml").write_text(BAD)
    (tmp_path / "proj" / "configs" / "train.yaml").write_text(BAD)
    assert _codes(run_cli, tmp_path, "proj") == ["proj/configs/train.yaml"]
    assert _codes(run_cli, tmp_path, "proj/tests/fixtures/train.yaml") == ["proj/tests/fixtures/train.yaml"]
