"""Config for real models (issue 16, item 9): `model.state_key`, `model.drop_keys` and keyword
`forward` inputs. Every worked config in docs/fix.md is run here as written (models built in
code, nothing downloaded); only a missing torchvision swaps in a same-named stand-in."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from fixhelp import FAST

torch = pytest.importorskip("torch")

DOCS = Path(__file__).resolve().parent.parent / "docs" / "fix.md"


def worked_config(name: str) -> str:
    """The YAML block after `<!-- worked-config: NAME -->` in docs/fix.md."""
    m = re.search(rf"<!-- worked-config: {re.escape(name)} -->\s*```yaml\n(.*?)```", DOCS.read_text(), re.S)
    assert m, f"docs/fix.md has no worked config {name!r}"
    return m.group(1)


# A torchvision-style ResNet (same constructor and state-dict names as torchvision's
# resnet18, one block per stage): used when torchvision is not installed.
TV_STANDIN = textwrap.dedent('''
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                                nn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            return self.relu(out + (x if self.downsample is None else self.downsample(x)))

    class ResNet(nn.Module):
        def __init__(self, num_classes=1000):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = nn.Sequential(BasicBlock(16, 16, 1))
            self.layer2 = nn.Sequential(BasicBlock(16, 32, 2))
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(32, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer2(self.layer1(x))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    def resnet18(num_classes=1000, weights=None):
        assert weights is None
        return ResNet(num_classes)
''')

SPEAKER = textwrap.dedent('''
    import torch
    from torch import nn

    class SpeakerEncoder(nn.Module):
        def __init__(self, n_mels, hidden, layers, embed):
            super().__init__()
            self.lstm = nn.LSTM(n_mels, hidden, layers, batch_first=True)
            self.linear = nn.Linear(hidden, embed)

        def forward(self, mels):
            _, (h, _) = self.lstm(mels)
            e = torch.relu(self.linear(h[-1]))
            return e / (e.norm(dim=1, keepdim=True) + 1e-5)
''')

TEXT_ENCODER = textwrap.dedent('''
    from transformers import BertConfig, BertModel

    def build(**kw):
        return BertModel(BertConfig(**kw), add_pooling_layer=False)
''')


def _module(path: Path, name: str, source: str):
    """Write project code beside the config and import it the way build_model will."""
    import importlib.util

    (path / f"{name}.py").write_text(source)
    spec = importlib.util.spec_from_file_location(f"_test_{name}", path / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _adam(model, *inputs) -> dict:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    out = model(*inputs)
    first = out[0] if isinstance(out, (tuple, list)) or hasattr(out, "to_tuple") else out
    first.float().pow(2).mean().backward()
    opt.step()
    return opt.state_dict()


def test_torchvision_style_classifier_config(run_cli, tmp_path):
    text = worked_config("torchvision")
    try:
        from torchvision.models import resnet18  # noqa: F401
        build = __import__("torchvision.models", fromlist=["resnet18"]).resnet18
    except ImportError:  # not installed here: a stand-in with torchvision's names and constructor
        build = _module(tmp_path, "tvstyle", TV_STANDIN).resnet18
        text = text.replace("torchvision.models:resnet18", "tvstyle:resnet18")
    (tmp_path / "train.yaml").write_text(text)
    torch.manual_seed(0)
    model = build(num_classes=10, weights=None).eval()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state["aux_head.weight"] = torch.randn(10, 16)  # the training-only auxiliary head
    ckpt = tmp_path / "checkpoint.pth"
    torch.save({"model": state, "optimizer": _adam(model, torch.randn(2, 3, 64, 64)), "lr_scheduler": {},
                "epoch": 89, "args": {"lr": 0.1}}, ckpt)
    code, out, err = run_cli("fix", ckpt, "--config", tmp_path / "train.yaml", "--run-model", "--apply",
                             "strip-optimizer,cast-bf16,safetensors", "--out", tmp_path / "o", *FAST)
    assert code == 0, out + err
    report = json.loads((tmp_path / "o" / "fix-report.json").read_text())
    assert report["model_load"]["dropped_keys"] == ["aux_head.weight"]
    assert any("dropped 1 checkpoint keys" in w and "aux_head.weight" in w for w in report["warnings"])
    cast = next(s for s in report["steps"] if s["name"] == "cast-bf16" and s["evidence"].get("fidelity"))
    assert cast["evidence"]["fidelity"]["mean_cosine"] > 0.99


def test_hf_encoder_config_exports_keyword_inputs(run_cli, tmp_path):
    pytest.importorskip("transformers")
    text_encoder = _module(tmp_path, "text_encoder", TEXT_ENCODER)
    (tmp_path / "train.yaml").write_text(worked_config("hf-encoder"))
    torch.manual_seed(0)
    kw = {"vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
          "intermediate_size": 128}
    model = text_encoder.build(**kw).eval()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state["pooler.dense.weight"], state["pooler.dense.bias"] = torch.randn(64, 64), torch.zeros(64)
    ids = torch.randint(0, 1000, (2, 8))
    ckpt = tmp_path / "encoder.pt"
    torch.save({"model_state_dict": state, "optimizer_state_dict": _adam(model, ids), "step": 1}, ckpt)
    code, out, err = run_cli("fix", ckpt, "--config", tmp_path / "train.yaml", "--run-model",
                             "--apply", "onnx", "--out", tmp_path / "o", *FAST)
    assert code == 0, out + err
    import onnx

    graph = onnx.load(str(tmp_path / "o" / "encoder.onnx")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in graph.output] == ["last_hidden_state"]
    report = json.loads((tmp_path / "o" / "fix-report.json").read_text())
    assert sorted(report["model_load"]["dropped_keys"]) == ["pooler.dense.bias", "pooler.dense.weight"]
    assert report["model_load"]["state_key"] == "model_state_dict"
    parity = next(s for s in report["steps"] if s["name"] == "onnx")["evidence"]["parity"]
    assert len(parity) == 2 and all(c["max_abs_err"] < 1e-3 for c in parity)


def test_lstm_speaker_encoder_config(run_cli, tmp_path):
    speaker = _module(tmp_path, "speaker", SPEAKER)
    (tmp_path / "train.yaml").write_text(worked_config("lstm"))
    torch.manual_seed(0)
    model = speaker.SpeakerEncoder(40, 64, 2, 32).eval()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state["similarity_weight"], state["similarity_bias"] = torch.tensor([10.0]), torch.tensor([-5.0])
    ckpt = tmp_path / "encoder.pt"
    adam = _adam(model, torch.randn(2, 20, 40))
    torch.save({"model_state": state, "optimizer_state": adam, "step": 3}, ckpt)
    code, out, err = run_cli("fix", ckpt, "--config", tmp_path / "train.yaml", "--run-model", "--apply",
                             "strip-optimizer,cast-bf16,safetensors", "--out", tmp_path / "o", *FAST)
    assert code == 0, out + err
    report = json.loads((tmp_path / "o" / "fix-report.json").read_text())
    assert sorted(report["model_load"]["dropped_keys"]) == ["similarity_bias", "similarity_weight"]
    cast = next(s for s in report["steps"] if s["name"] == "cast-bf16" and s["evidence"].get("fidelity"))
    assert cast["evidence"]["fidelity"]["mean_cosine"] > 0.99


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('  drop_keys: ["similarity_*"]\n', ""),
         "2 keys the model class does not own (e.g. similarity_weight, similarity_bias): "
         "list them in model.drop_keys"),
        (lambda t: t.replace("state_key: model_state", "state_key: weights"), "model.state_key 'weights'"),
        (lambda t: t.replace('["similarity_*"]', '["*"]').replace("layers: 2", "layers: 3"),
         "lacks 4 keys the model class needs"),
        (lambda t: t.replace("  input_spec:", "  forward: {ouput: 0}\n  input_spec:"),
         "model.forward has no key 'ouput'"),
        (lambda t: t.replace('["similarity_*"]', "{a: 1}"), "model.drop_keys must be a list of globs"),
    ],
)
def test_config_that_does_not_fit_is_one_line(run_cli, tmp_path, edit, message):
    """Unowned keys no glob allows, a wrong state key and missing keys: one line, exit 2 (a
    glob never drops a key the class owns, and missing keys are never filled with random
    weights)."""
    speaker = _module(tmp_path, "speaker", SPEAKER)
    (tmp_path / "train.yaml").write_text(edit(worked_config("lstm")))
    model = speaker.SpeakerEncoder(40, 64, 2, 32)
    state = {**model.state_dict(), "similarity_weight": torch.ones(1), "similarity_bias": torch.zeros(1)}
    ckpt = tmp_path / "encoder.pt"
    torch.save({"model_state": state, "step": 3}, ckpt)
    code, _, err = run_cli("fix", ckpt, "--config", tmp_path / "train.yaml", "--run-model",
                           "--apply", "cast-bf16", "--out", tmp_path / "o", *FAST)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
