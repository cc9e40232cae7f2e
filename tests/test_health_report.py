"""The health inputs' numbers reach the JSON report as artifacts (layout, stats, memory)."""

from __future__ import annotations

import json

from tests.casekit import ROOT

CASES = ROOT / "fixtures" / "build" / "cases"


def test_json_report_carries_layout_stats_and_memory(run_cli, tmp_path):
    out = tmp_path / "r.json"
    code, _, err = run_cli("scan", ".", "--isolated", "--select", "MLC006,MLC011", "--format", "json",
                           "--output", out, cwd=CASES / "MLC006" / "fire")
    assert code == 1, err
    report = json.loads(out.read_text())
    arts = {(a["path"], a["kind"]): a["details"] for a in report["artifacts"]}
    layout = arts[("ckpt.pt", "checkpoint-layout")]
    assert layout["parameters"] == 516 and layout["trainable"] == 516
    assert layout["optimizer"]["mapped_to_names"] is True
    assert layout["modules"]["fc2"]["params"] == 16 * 16 + 16
    memory = arts[("ckpt.pt", "checkpoint-memory")]
    assert memory["accounting"].startswith("fp32: 4 B weights")
    assert memory["inference_bytes"] == {"fp32": 516 * 4, "bf16": 516 * 2, "fp16": 516 * 2, "int8": 516}
    assert memory["training_total_bytes"] == 516 * 16
    stats = arts[("ckpt.pt", "checkpoint-stats")]
    assert stats["nonfinite_tensors"] == 0
    (finding,) = [f for f in report["findings"] if f["code"] == "MLC006"]
    assert finding["evidence"]["training_bytes"] == 516 * 16  # AdamW fp32: 16 B per parameter


def test_run_model_reports_flops_with_estimate_label(run_cli, tmp_path):
    out = tmp_path / "r.json"
    case = CASES / "MLC020" / "fire"
    code, _, err = run_cli("scan", ".", "--isolated", "--run-model", "--select", "MLC020", "--format",
                           "json", "--output", out, cwd=case)
    assert code == 0, err
    (finding,) = json.loads(out.read_text())["findings"]
    assert finding["message"].startswith("ESTIMATE: 384 FLOPs forward per example")
    ev = finding["evidence"]
    assert ev["forward_flops_per_example"] == 2 * 8 * 16 + 2 * 16 * 4
    assert ev["train_flops_per_step"] == ev["train_flops_per_example"] * 32


def test_run_model_pairs_a_config_only_with_checkpoints_it_describes(run_cli, tmp_path):
    """Issue 16: a folder's config was paired with every checkpoint in it, and a checkpoint of
    another architecture got the FLOPs of the config's model. Names and shapes must agree."""
    import shutil

    import torch

    case = tmp_path / "case"
    shutil.copytree(CASES / "MLC020" / "fire", case)
    other = {"fc1.weight": torch.zeros(3, 8), "fc1.bias": torch.zeros(3), "fc2.weight": torch.zeros(4, 3),
             "fc2.bias": torch.zeros(4)}  # fmt: skip
    torch.save(other, case / "other.pt")
    out = tmp_path / "r.json"
    code, _, err = run_cli("scan", ".", "--isolated", "--run-model", "--select", "MLC020,MLG014", "--format",
                           "json", "--output", out, cwd=case)  # fmt: skip
    assert code in (0, 1), err
    findings = json.loads(out.read_text())["findings"]
    by_file = {(f["location"]["path"], f["code"]): f for f in findings}
    assert ("model.pt", "MLC020") in by_file  # the checkpoint the config describes: measured
    assert ("other.pt", "MLC020") not in by_file  # never the FLOPs of another architecture
    message = by_file[("other.pt", "MLG014")]["message"]
    assert "does not describe this checkpoint" in message and "fc1.weight: [3, 8]" in message
