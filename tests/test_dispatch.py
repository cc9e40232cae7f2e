"""Per-file dispatch (mlaudit/dispatch.py) and the code index it shares (issue 18): worker
processes must report exactly what the in-process path reports, parse errors included."""

from __future__ import annotations

import ast
import json

from mlaudit.inputs.code_index import build_index

SCRIPT = '''import torch as th
from transformers import AutoModel

from .models import Net


def train(model, loader, opt):
    for x, y in loader:
        loss = model(x).sum()
        loss.backward()
        opt.step()


if __name__ == "__main__":
    net = th.load("ckpt_{i}.pt")
    AutoModel.from_pretrained("org/model-{i}")
    Net.from_pretrained("local")
'''


def _tree(tmp_path, n: int = 24):
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "models.py").write_text("class Net:\n    pass\n")
    for i in range(n):
        (root / "pkg" / f"train_{i:02d}.py").write_text(SCRIPT.format(i=i))
    (root / "pkg" / "broken.py").write_text("def broken(:\n")
    return root


def _scan(run_cli, root, out, jobs: str, monkeypatch) -> list[dict]:
    monkeypatch.setenv("MLAUDIT_JOBS", jobs)
    code, _, err = run_cli("scan", root, "--isolated", "--format", "json", "--output", out)
    assert code in (0, 1), err
    return json.loads(out.read_text())["findings"]


def test_workers_report_exactly_what_one_process_reports(run_cli, tmp_path, monkeypatch):
    root = _tree(tmp_path)
    serial = _scan(run_cli, root, tmp_path / "serial.json", "1", monkeypatch)
    parallel = _scan(run_cli, root, tmp_path / "parallel.json", "3", monkeypatch)
    assert parallel == serial
    codes = {f["code"] for f in serial}
    # per-file rules, a cross-file rule fed by worker facts, and the parse error of broken.py
    assert {"MLQ001", "MLS101", "MLS103", "MLR003", "MLA002"} <= codes
    assert sum(f["code"] == "MLS103" for f in serial) == 24  # AutoModel, never the project's Net


def test_index_resolves_callees_through_imports():
    tree = ast.parse(
        "import torch as th\nfrom transformers import AutoModel as AM\nfrom .m import Net\n"
        "def f():\n    from datasets import load_dataset\n    return load_dataset('x')\n"
        "th.load('a')\nAM.from_pretrained('b')\nNet.from_pretrained('c')\n"
    )
    index = build_index(tree)
    resolved = {c.name: c.resolved for c in index.calls}
    assert resolved["th.load"] == "torch.load"
    assert resolved["AM.from_pretrained"] == "transformers.AutoModel.from_pretrained"
    assert resolved["Net.from_pretrained"] == ".m.Net.from_pretrained"  # project code, relative
    assert resolved["load_dataset"] == "datasets.load_dataset"  # a function-local import counts too
    func = index.functions[0]
    assert [c.name for c in index.calls_in(func)] == ["load_dataset"]


def test_what_workers_rule_out_changes_nothing(run_cli, tmp_path, monkeypatch):
    """Workers tell the parent which files cannot be config modules or hold suppression
    comments (so it reads them no more): a config module, used and unused suppressions, a
    BOM and a non-UTF-8 coding declaration must come out as one process reports them."""
    root = _tree(tmp_path)
    pkg = root / "pkg"
    (pkg / "suppressed.py").write_text(
        "import torch\n\nstate = torch.load('m.pt')  # mlaudit: ignore[MLS101] trusted\n")
    (pkg / "unused.py").write_text(
        "import torch\n\n# mlaudit: ignore[MLS101] trusted\nstate = torch.load('m.pt', weights_only=True)\n")
    (pkg / "bom.py").write_bytes(
        b"\xef\xbb\xbfimport torch\nstate = torch.load('m.pt')  # mlaudit: ignore[MLS101] trusted\n")
    (pkg / "latin.py").write_bytes(
        b"# -*- coding: latin-1 -*-\nimport torch\nname = '\xe9'\nstate = torch.load('m.pt')\n")
    (root / "configs").mkdir()
    (root / "configs" / "sgd.py").write_text(
        "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.4))\nrandomness = dict(seed=None)\n")
    serial = _scan(run_cli, root, tmp_path / "serial.json", "1", monkeypatch)
    parallel = _scan(run_cli, root, tmp_path / "parallel.json", "3", monkeypatch)
    assert parallel == serial
    where = {(f["code"], f["location"]["path"].rsplit("/", 1)[-1]) for f in serial}
    assert ("MLA003", "unused.py") in where  # the unused suppression is still found
    assert ("MLS101", "latin.py") in where
    assert not {("MLS101", "suppressed.py"), ("MLS101", "bom.py")} & where  # still suppressed
    assert any(path == "sgd.py" and code.startswith(("MLT", "MLR")) for code, path in where)
