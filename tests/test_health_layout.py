"""Checkpoint layout (header only): parameters vs buffers, optimizer index mapping and its
refusal to guess, roles, prefixes, memory accounting."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from mlaudit.inputs.checkpoint import read_checkpoint  # noqa: E402
from mlaudit.inputs.checkpoint.layout import build_layout  # noqa: E402
from mlaudit.inputs.memory_estimate import inference_bytes, training_bytes  # noqa: E402


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))


def _step(net, opt):
    net.train()
    net(torch.randn(16, 4)).sum().backward()
    opt.step()


def test_params_buffers_and_optimizer_mapping(tmp_path):
    net = _net()
    opt = torch.optim.Adam(net.parameters())
    _step(net, opt)
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": net.state_dict(), "optimizer": opt.state_dict()}, path)
    layout = build_layout(read_checkpoint(path, "ckpt.pt"), None)
    assert layout.model_prefix == "state_dict."
    assert layout.param_count() == sum(p.numel() for p in net.parameters())
    assert layout.buffer_count() == 8 + 8 + 1  # running mean/var, num_batches_tracked
    opt_state = layout.optimizer
    assert opt_state is not None and opt_state.kind == "adam-like"
    names = [n for n, _ in net.named_parameters()]
    assert [opt_state.names[i] for i in opt_state.param_ids] == [f"state_dict.{n}" for n in names]
    assert layout.trainable()[0] == layout.param_count()
    tree = layout.module_tree()
    assert tree["0"]["params"] == 40 and tree["1"]["buffers"] == 17


def test_optimizer_mapping_refuses_to_guess(tmp_path):
    net = _net()
    # Groups not in model order: biases first. Counts agree, shapes do not.
    biases = [p for n, p in net.named_parameters() if n.endswith("bias")]
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    opt = torch.optim.AdamW([{"params": biases, "weight_decay": 0.0}, {"params": weights}])
    _step(net, opt)
    path = tmp_path / "ckpt.pt"
    torch.save({"model": net.state_dict(), "optimizer": opt.state_dict()}, path)
    layout = build_layout(read_checkpoint(path, "ckpt.pt"), None)
    assert layout.optimizer.names == {}
    assert "not in model order" in layout.optimizer.mapping_problem
    # Fewer optimizer entries than parameters (frozen layer): counts disagree, said so.
    net2 = _net()
    opt2 = torch.optim.Adam(list(net2[2].parameters()))
    _step(net2, opt2)
    torch.save({"model": net2.state_dict(), "optimizer": opt2.state_dict()}, path)
    layout2 = build_layout(read_checkpoint(path, "ckpt.pt"), None)
    assert "lists 2 parameters but the model state dict has 6" in layout2.optimizer.mapping_problem
    assert layout2.trainable()[0] is None


def test_wrapper_prefix_and_role(tmp_path):
    path = tmp_path / "model_export.pt"
    torch.save({f"module.{k}": v for k, v in _net().state_dict().items()}, path)
    layout = build_layout(read_checkpoint(path, "model_export.pt"), None)
    assert layout.wrapper_prefix == "module."
    assert layout.role == "inference" and "export" in layout.role_source
    assert "0" in layout.module_tree()  # tree keys are stripped of the wrapper


def test_safetensors_param_count_reads_only_the_header(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    save_file({"a.weight": torch.zeros(100, 10), "a.bias": torch.zeros(100)}, str(path))
    layout = build_layout(read_checkpoint(path, "m.safetensors"), None)
    assert layout.param_count() == 1100


def test_memory_accounting_numbers():
    p = 1_000_000
    assert inference_bytes(p, 0) == {"fp32": 4 * p, "bf16": 2 * p, "fp16": 2 * p, "int8": p}
    fp32 = training_bytes(p, 0, "adamw", "fp32", None)
    assert fp32.total == 16 * p  # 4 weights + 4 grads + 8 Adam
    amp = training_bytes(p, 0, "adamw", "bf16-mixed", None)
    assert amp.total == 18 * p and amp.master == 2 * p
    pure = training_bytes(p, 0, "adamw", "bf16", 1000.0)
    assert pure.total == 8 * p + 1000
    sgd = training_bytes(p, 0, "sgd", "fp32", None)
    assert sgd.total == 12 * p
