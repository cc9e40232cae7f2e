"""Training-config reading: line numbers, dialects, and bad input that must end in one
clear line and exit 2 (never a traceback), within bounded time and memory."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlaudit.inputs import InputError
from mlaudit.inputs.training_config import read_training_config
from mlaudit.inputs.yaml_lines import parse_config_text

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


def _scan_one(run_cli, path: Path) -> tuple[int, str, str]:
    return run_cli("scan", str(path), "--isolated", "--select", "MLT,MLR,MLQ,MLS1,MLA")


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("tabs.yaml", b"lr: 1\n\tseed: 2\n", "line 2"),
        ("bad.json", b'{"lr": 0.1,\n "seed": }\n', "line 2: malformed JSON"),
        ("latin1.yaml", b"lr: 1\nname: caf\xe9\n", "line 2: not valid UTF-8"),
        ("bomb.yaml", BOMB.encode(), "alias bomb"),
        ("utf16.yaml", "lr: 1\n".encode("utf-16"), "UTF-16"),
        ("unclosed.yaml", b"model: {a: 1\nlr: 2\n", "malformed YAML"),
        ("pyobj.yaml", b"lr: !!python/object/apply:os.system ['echo hi']\n", "line 1"),
    ],
)
def test_bad_config_named_directly_is_one_line_exit_2(run_cli, tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    started = time.perf_counter()
    code, out, err = _scan_one(run_cli, path)
    assert time.perf_counter() - started < 5
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and needle in lines[0], err
    assert "Traceback" not in out + err


def test_bad_config_in_directory_is_inconclusive_not_fatal(run_cli, tmp_path):
    (tmp_path / "bomb.yaml").write_text(BOMB)
    (tmp_path / "data.yaml").write_text("- just\n- a list\n")  # not a config: silently skipped
    (tmp_path / "notes.yaml").write_text("title: hello\nauthors: [a, b]\n")  # a mapping, no dialect
    out = tmp_path / "r.json"
    # Config and meta rules only: project-level rules (no README...) would fire here too.
    code, _, err = run_cli("scan", str(tmp_path), "--isolated", "--select", "MLA,MLT,MLR0",
                           "--format", "json", "--output", str(out))
    import json

    findings = json.loads(out.read_text())["findings"]
    assert code == 1, err
    got = [(f["code"], f["location"]["path"].rsplit("/", 1)[-1]) for f in findings]
    assert got == [("MLA002", "bomb.yaml")]


def test_fifty_megabyte_yaml_is_refused_quickly(run_cli, tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "w") as fh:
        fh.write("lr: 0.1\nitems:\n")
        chunk = "  - " + "x" * 95 + "\n"
        for _ in range(50 * 1024 * 1024 // len(chunk) + 1):
            fh.write(chunk)
    started = time.perf_counter()
    code, _, err = _scan_one(run_cli, path)
    assert time.perf_counter() - started < 5
    assert code == 2 and "too large" in err and "huge.yaml" in err
    # In a directory scan a file that size is data, not a config: skipped.
    code, _, err = run_cli("scan", str(tmp_path), "--isolated", "--select", "MLT,MLA002")
    assert code == 0, err


def test_bom_and_crlf_are_accepted_with_right_lines(tmp_path):
    path = tmp_path / "args.yaml"
    path.write_bytes(b"\xef\xbb\xbfoutput_dir: out\r\nlearning_rate: 0.5\r\noptim: adamw_torch\r\n")
    cfg = read_training_config(path, "args.yaml")
    assert cfg is not None and cfg.dialect == "huggingface"
    assert cfg.lr == 0.5 and cfg.lines["lr"] == 2 and cfg.optimizer == "adamw"


def test_every_key_has_its_line_and_duplicates_are_kept(tmp_path):
    text = "a:\n  b: 1\n  c: [1, 2]\nbase: &base {x: 1}\nd:\n  <<: *base\n  y: 2\na: 3\n"
    doc = parse_config_text(text, "t.yaml")
    assert doc.lines["a.b"] == 2 and doc.lines["a.c"] == 3 and doc.lines["d.y"] == 7
    assert doc.data["d"] == {"x": 1, "y": 2}
    assert doc.duplicates == (("a", 8, 1),)


def test_hydra_interpolation_is_resolved_statically_and_nothing_runs(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "lr: 0.002\nbase: /data\noptimizer:\n  _target_: torch.optim.AdamW\n  lr: ${lr}\n"
        "paths:\n  out: ${base}/out\n  home: ${oc.env:HOME}\n"
    )
    cfg = read_training_config(path, "config.yaml")
    assert cfg.dialect == "hydra" and cfg.lr == 0.002 and cfg.lines["lr"] == 5
    assert cfg.raw["paths"] == {"out": "/data/out", "home": "${oc.env:HOME}"}


def test_deepspeed_auto_means_decided_elsewhere(tmp_path):
    path = tmp_path / "ds_config.json"
    path.write_text('{"train_micro_batch_size_per_gpu": "auto", "gradient_clipping": "auto",'
                    ' "bf16": {"enabled": "auto"}, "zero_optimization": {"stage": 3}}')
    cfg = read_training_config(path, "ds_config.json")
    assert cfg.dialect == "deepspeed"
    assert {"batch_size", "grad_clip", "precision"} <= cfg.auto
    assert cfg.effective("grad_clip") is None and cfg.effective("precision") is None


def test_dialect_override_comment(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("# mlaudit: dialect=lightning\ntrainer:\n  precision: 16-mixed\n")
    cfg = read_training_config(path, "x.yaml")
    assert cfg.dialect == "lightning" and cfg.precision == "fp16-mixed"


def test_config_flag_rejects_a_non_config(run_cli, tmp_path):
    (tmp_path / "notes.yaml").write_text("title: hello\n")
    code, _, err = run_cli("scan", str(tmp_path), "--isolated", "--select", "MLT012",
                           "--config", str(tmp_path / "notes.yaml"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no training-config keys" in err


def _lm_checkpoint(path: Path, metadata: dict[str, str] | None = None) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"embed.weight": np.zeros((50, 8), dtype=np.float32)}, str(path), metadata=metadata)


def test_checkpoint_pairs_with_config_from_flag_or_metadata(run_cli, tmp_path):
    import json

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "train.yaml").write_text(
        "model:\n  _target_: lm:LM\n  vocab_size: 64\n  hidden_size: 8\noptimizer: adamw\nlr: 1.0e-3\n")
    _lm_checkpoint(tmp_path / "models" / "lm.safetensors")
    out = tmp_path / "r.json"

    def codes(*extra: str) -> list[str]:
        run_cli("scan", str(tmp_path), "--isolated", "--select", "MLT012", "--format", "json",
                "--output", str(out), *extra)
        return [f"{f['code']} {f['location']['line']}" for f in json.loads(out.read_text())["findings"]]

    assert codes() == []  # the config is in another directory: not paired by discovery
    assert codes("--config", str(tmp_path / "configs" / "train.yaml")) == ["MLT012 3"]
    _lm_checkpoint(tmp_path / "models" / "lm.safetensors",
                   {"training_config": "configs/train.yaml", "framework": "pt"})
    assert codes() == ["MLT012 3"]


def test_inline_suppression_is_respected_and_can_be_ignored(run_cli, tmp_path):
    (tmp_path / "args.yaml").write_text(
        "output_dir: /home/a/out  # mlaudit: ignore[MLT010] fine here\nlearning_rate: 1.0e-4\n")
    code, out, _ = run_cli("scan", str(tmp_path), "--isolated", "--select", "MLT010")
    assert code == 0 and "MLT010" not in out
    code, out, _ = run_cli("scan", str(tmp_path), "--isolated", "--select", "MLT010", "--ignore-suppressions")
    assert "MLT010" in out and "1 warning" in out


SEED_CONFIG = (
    "output_dir: out\nlearning_rate: 5.0e-5\nfp16: true\nbf16: false\nmodel:\n  _target_: a.b:C\n"
    "  vocab_size: 100\ntrainer:\n  precision: 16-mixed\n  max_epochs: 3\nseed: 1\n"
    "optimizer: {_target_: torch.optim.AdamW, lr: 0.001}\nanchor: &x [1, 2]\nref: *x\n"
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cuts=st.lists(st.tuples(st.integers(0, len(SEED_CONFIG)), st.integers(0, 6),
                            st.sampled_from(["", "\t", ":", "- ", "{", "}", "[", "&a ", "*a", "${", "\xff",
                                             "\n  ", "!!python/object ", "'", '"', "\ufeff", "~", "0x"])),
                  max_size=4),
)
def test_mutated_configs_never_raise_anything_but_input_error(tmp_path, cuts):
    text = SEED_CONFIG
    for pos, drop, insert in cuts:
        pos = min(pos, len(text))
        text = text[:pos] + insert + text[pos + drop:]
    path = tmp_path / "mutant.yaml"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    try:
        cfg = read_training_config(path, "mutant.yaml")
    except InputError as err:
        assert "\n" not in str(err)
        return
    if cfg is not None:  # every rule must run on whatever parsed
        from mlaudit.catalog import load_catalog
        from mlaudit.checks.registry import implementations
        from mlaudit.context import RuleContext
        from mlaudit.params import RuleParams

        catalog = load_catalog()
        for code, impl in implementations().items():
            if impl.needs == "training_config":
                meta = catalog[code]
                list(impl.func(cfg, RuleContext(meta, RuleParams.build(meta), meta.severity)))


PY_SEED = (
    "import torch\nimport numpy as np\n\n\ndef evaluate(model, loader):\n    for x, y in loader:\n"
    "        if model.forward(x) == np.nan:\n            torch.load('a.pt')\n\n\n"
    "for x in range(3):\n    loss.backward()\n    opt.step()\n"
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.tuples(st.integers(0, len(PY_SEED)), st.integers(0, 4),
                               st.sampled_from(["", "(", ")", ":", "\t", "    ", "\n", "\xff", "yield"])),
                     max_size=3))
def test_mutated_python_never_raises_anything_but_input_error(tmp_path, cuts):
    from mlaudit.catalog import load_catalog
    from mlaudit.checks.registry import implementations
    from mlaudit.context import RuleContext
    from mlaudit.inputs.python_code import parse_python
    from mlaudit.params import RuleParams

    text = PY_SEED
    for pos, drop, insert in cuts:
        pos = min(pos, len(text))
        text = text[:pos] + insert + text[pos + drop:]
    path = tmp_path / "mutant.py"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    try:
        module = parse_python(path, "mutant.py")
    except InputError as err:
        assert "\n" not in str(err)
        return
    catalog = load_catalog()
    for code, impl in implementations().items():
        if impl.needs == "python":
            meta = catalog[code]
            list(impl.func(module, RuleContext(meta, RuleParams.build(meta), meta.severity)))


def test_demo_sample_config_findings_point_at_their_lines(run_cli, tmp_path):
    import json

    from tests.casekit import ROOT

    sample = ROOT / "fixtures" / "build" / "sample_project"
    out = tmp_path / "r.json"
    run_cli("scan", str(sample), "--isolated", "--select", "MLT", "--format", "json", "--output", str(out))
    got = sorted(
        f"{f['code']} {f['location']['line'] or f['location']['pointer']}"
        for f in json.loads(out.read_text())["findings"]
        if f["location"]["path"].endswith("configs/train.yaml")
    )
    assert got == sorted([
        "MLT001 validation_split", "MLT002 grad_clip", "MLT003 12", "MLT004 11", "MLT005 10",
        "MLT007 16", "MLT008 15", "MLT009 checkpoint", "MLT010 17", "MLT011 19",
    ])
