"""Python config modules (mmengine `_base_` style) are read with `ast`, never executed."""

from __future__ import annotations

from pathlib import Path

from mlaudit.inputs.py_config import merge_python_bases, parse_python_config, read_python_config


def test_literal_assignments_and_lines():
    text = ("_base_ = ['./base.py']\n"
            "lr = 0.1 * 4\n"
            "optim_wrapper = dict(\n"
            "    optimizer=dict(type='SGD', lr=lr, weight_decay=1e-4),\n"
            "    clip_grad=None)\n"
            "train_cfg = dict(max_epochs=-(-90))\n")
    data, lines = parse_python_config(text)
    assert data["optim_wrapper"]["optimizer"] == {"type": "SGD", "lr": 0.4, "weight_decay": 1e-4}
    assert data["optim_wrapper"]["clip_grad"] is None
    assert data["train_cfg"]["max_epochs"] == 90
    assert lines["optim_wrapper.optimizer.lr"] == 4
    assert lines["optim_wrapper.clip_grad"] == 5


def test_program_is_not_a_config_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    lazy = ("from ..common.optim import SGD as optimizer\n"
            "optimizer.lr = 0.01\n")
    assert parse_python_config(lazy) is None  # detectron2 LazyConfig: imports and attributes
    calls = (f"optim_wrapper = dict(optimizer=dict(type='SGD', lr=open({str(marker)!r}, 'w')))\n"
             "train_cfg = dict(max_epochs=12)\n"
             "default_scope = 'mmdet'\n")
    data, _ = parse_python_config(calls)
    assert "optim_wrapper" not in data  # not a literal: left out, unknown
    assert data["train_cfg"] == {"max_epochs": 12}
    assert not marker.exists()


def test_plain_module_is_not_a_config():
    assert parse_python_config("import torch\nx = 1\n") is None
    assert parse_python_config("lr = 0.1\nbatch = 8\n") is None  # no mmengine names, no _base_


def test_bases_merge_as_mmengine_does(tmp_path: Path):
    (tmp_path / "_base_").mkdir()
    (tmp_path / "_base_" / "schedule.py").write_text(
        "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9))\n"
        "param_scheduler = [dict(type='StepLR', step_size=30)]\n")
    (tmp_path / "_base_" / "runtime.py").write_text("randomness = dict(seed=None)\n"
                                                    "default_scope = 'mmpretrain'\n")
    child = tmp_path / "exp.py"
    child.write_text("_base_ = ['./_base_/schedule.py', './_base_/runtime.py']\n"
                     "optim_wrapper = dict(optimizer=dict(lr=0.02))\n"
                     "param_scheduler = dict(_delete_=True, type='CosineAnnealingLR', T_max=90)\n")
    doc, why = read_python_config(child, "exp.py")
    assert "_base_" in why
    data, lines, files = merge_python_bases(child, "exp.py", doc)
    assert data["optim_wrapper"]["optimizer"] == {"type": "SGD", "lr": 0.02, "momentum": 0.9}
    assert data["param_scheduler"] == {"type": "CosineAnnealingLR", "T_max": 90}
    assert files["randomness.seed"] == "_base_/runtime.py" and lines["randomness.seed"] == 1
    assert "optim_wrapper.optimizer.lr" not in files  # written by the child itself
