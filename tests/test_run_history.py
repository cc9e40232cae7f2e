"""Run histories (issue 17): readers on real logs written by HF Trainer, Lightning (CSV and
TensorBoard loggers) and MLflow (fixtures/gen/run_histories.py), the detection functions on
hand-made series, and the planted pathologies found at the step where they were planted."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from mlaudit.checks import _history_signals as sig
from mlaudit.inputs import InputError
from mlaudit.inputs.history import Series, assign_roles
from mlaudit.inputs.history.huggingface import read_trainer_state
from mlaudit.inputs.history.lightning_csv import read_metrics_csv
from mlaudit.inputs.history.mlflow_store import read_mlflow_run
from mlaudit.inputs.history.tensorboard import read_event_folder

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "fixtures" / "build" / "histories"
PLANTED = json.loads((RUNS / "planted.json").read_text())["runs"]
HEALTHY = sorted(name for name, p in PLANTED.items() if p["pathology"] is None)


def s(values, steps=None, name="x") -> Series:
    steps = list(steps) if steps is not None else list(range(1, len(values) + 1))
    return Series(name, tuple(steps), tuple(float(v) for v in values))


def scan_json(run_cli, path: Path, tmp_path: Path, select: str = "MLH") -> list[dict]:
    out = tmp_path / "r.json"
    code, _, err = run_cli(
        "scan", str(path), "--isolated", "--select", select, "--format", "json", "--output", str(out)
    )
    assert code in (0, 1), err
    return json.loads(out.read_text())["findings"]


# ---------------------------------------------------------------- readers on real logs


def test_hf_reader_roles_and_summary_entry():
    h = read_trainer_state(RUNS / "hf_overfit" / "trainer_state.json", "trainer_state.json")
    assert h.roles == {
        "train_loss": "loss",
        "eval_loss": "eval_loss",
        "grad_norm": "grad_norm",
        "lr": "learning_rate",
    }
    assert "train_loss" not in h.series  # the end-of-run average is no point on the curve
    assert h.role("eval_loss").steps == tuple(range(10, 301, 10))
    assert h.checkpoint_steps == tuple(range(50, 301, 50))
    assert h.best_checkpoint.endswith("checkpoint-50")


def test_lightning_csv_and_tensorboard_read_the_same_run():
    folder = RUNS / "pl_healthy" / "lightning_logs" / "version_0"
    csv_h = read_metrics_csv(folder / "metrics.csv", "metrics.csv")
    events = next(folder.glob("events.out.tfevents.*"))
    tb_h = read_event_folder(folder, events.name)
    assert (
        csv_h.roles
        == tb_h.roles
        == {"train_loss": "train_loss", "eval_loss": "val_loss", "grad_norm": "grad_norm", "lr": "lr-Adam"}
    )
    for role in ("train_loss", "eval_loss", "grad_norm"):
        a, b = csv_h.role(role), tb_h.role(role)
        assert a.steps == b.steps
        assert a.values == pytest.approx(b.values, rel=1e-6)  # TB stores float32
    assert csv_h.params["lr"] == 0.003  # hparams.yaml


def test_mlflow_reader():
    meta = next((RUNS / "mlflow_healthy").glob("mlruns/*/*/meta.yaml"))
    h = read_mlflow_run(meta, "mlruns/x/y/meta.yaml")
    assert h.roles["train_loss"] == "train_loss" and h.roles["eval_loss"] == "val_loss"
    assert len(h.role("train_loss")) == 60 and h.role("eval_loss").steps[0] == 25
    assert h.params["optimizer"] == "sgd"


def test_per_layer_grad_norms_are_found():
    h = read_metrics_csv(RUNS / "pl_vanishing" / "lightning_logs" / "version_0" / "metrics.csv", "m.csv")
    assert "net.0.weight" in h.layer_grad_norms and "net.20.weight" in h.layer_grad_norms
    assert h.roles["grad_norm"] == "grad_norm"


def test_role_names_across_libraries():
    roles, layers = assign_roles(
        [
            "train/loss",
            "eval/loss",
            "train/grad_norm",
            "train/learning_rate",
            "grad_2.0_norm/fc.weight",
            "grad_2.0_norm_total",
        ]
    )
    assert roles == {
        "train_loss": "train/loss",
        "eval_loss": "eval/loss",
        "grad_norm": "train/grad_norm",
        "lr": "train/learning_rate",
    }
    assert layers == {"fc.weight": "grad_2.0_norm/fc.weight"}


@pytest.mark.parametrize(
    "content, needle",
    [
        (b'{"log_history": [{"loss": 1.0, "step": 5}, {"lo', "not valid JSON"),
        (b"[1, 2]", "no log_history"),
        (b'{"log_history": [3]}', "expected an object"),
    ],
)
def test_hf_reader_corrupt_is_one_line(tmp_path, content, needle):
    p = tmp_path / "trainer_state.json"
    p.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_trainer_state(p, "trainer_state.json")
    assert needle in err.value.reason and "\n" not in str(err.value)


def test_hf_reader_keeps_nan_tokens(tmp_path):
    p = tmp_path / "trainer_state.json"
    p.write_text(
        '{"log_history": [{"loss": 1.0, "step": 5}, {"loss": NaN, "grad_norm": Infinity, "step": 10}]}'
    )
    h = read_trainer_state(p, "t.json")
    assert math.isnan(h.series["loss"].values[1]) and math.isinf(h.series["grad_norm"].values[0])


def test_csv_reader_rejects_cut_rows_and_ignores_other_csvs(tmp_path):
    p = tmp_path / "metrics.csv"
    p.write_text("epoch,step,train_loss\n0,4,2.3\n0,9\n")
    with pytest.raises(InputError, match="line 3: 2 cells"):
        read_metrics_csv(p, "metrics.csv")
    p.write_text("a,b\n1,2\n")
    assert read_metrics_csv(p, "metrics.csv") is None


def test_tensorboard_cut_file(tmp_path):
    events = next((RUNS / "pl_healthy" / "lightning_logs" / "version_0").glob("events.out.tfevents.*"))
    data = events.read_bytes()
    (tmp_path / events.name).write_bytes(data[:-3])
    with pytest.raises(InputError, match="cut off"):
        read_event_folder(tmp_path, events.name)
    (tmp_path / events.name).write_bytes(data[:12] + b"\xff" * 40 + data[52:])
    with pytest.raises(InputError):
        read_event_folder(tmp_path, events.name)


def test_tensorboard_missing_package_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard.compat.proto", None)
    (tmp_path / "events.out.tfevents.1.host").write_bytes(b"")
    with pytest.raises(InputError, match="tensorboard` package is not installed"):
        read_event_folder(tmp_path, "events.out.tfevents.1.host")


def test_mlflow_cut_metric_file(tmp_path):
    run = tmp_path / "mlruns" / "1" / "abc"
    (run / "metrics").mkdir(parents=True)
    (run / "meta.yaml").write_text("run_id: abc\n")
    (run / "metrics" / "loss").write_text("1700000000000 2.3 0\n1700000000001 2.")
    with pytest.raises(InputError, match="line 2: expected 'timestamp value step'"):
        read_mlflow_run(run / "meta.yaml", "mlruns/1/abc/meta.yaml")


# ---------------------------------------------------------------- detection functions


def _overfit_curves(rise_after: int = 40):
    steps = list(range(10, 401, 10))
    train = [2.3 * math.exp(-st / 60) + 0.01 for st in steps]
    evals = [
        max(2.3 * math.exp(-st / 60), 0.5) + (0.004 * (st - rise_after * 10) if st > rise_after * 10 else 0)
        for st in steps
    ]
    return s(train, steps, "loss"), s(evals, steps, "eval_loss")


def test_overfitting_step_is_the_eval_minimum():
    train, evals = _overfit_curves(rise_after=15)
    res = sig.overfitting(train, evals)
    assert isinstance(res, sig.Signal)
    assert res.step == 150 and res.evidence["eval_min"] == pytest.approx(0.5)
    assert res.evidence["gap_last"] > res.evidence["gap_at_min"]


def test_overfitting_silent_without_rise_and_too_short():
    train, evals = _overfit_curves(rise_after=1000)
    assert sig.overfitting(train, evals) is None
    assert isinstance(sig.overfitting(train, s([1, 0.9, 0.8], name="e")), sig.TooShort)
    assert isinstance(sig.overfitting(train, None), sig.TooShort)


def test_overfitting_needs_train_loss_to_fall():
    # both losses rise together: a broken run, not overfitting
    steps = list(range(10, 201, 10))
    evals = [1.0 - 0.05 * i if i < 8 else 0.6 + 0.05 * (i - 8) for i in range(len(steps))]
    train = [1.0 - 0.05 * i if i < 8 else 0.6 + 0.05 * (i - 8) for i in range(len(steps))]
    assert sig.overfitting(s(train, steps), s(evals, steps)) is None


def test_divergence_kinds():
    healthy = [2.3 * math.exp(-i / 20) + 0.02 * ((i * 7919) % 13) / 13 for i in range(100)]
    assert sig.divergence(s(healthy)) is None
    nan = healthy[:50] + [float("nan")] * 5 + healthy[55:]
    res = sig.divergence(s(nan))
    assert res.kind == "non-finite" and res.step == 51 and res.evidence["bad_points"] == 5
    spike = healthy[:60] + [5.0] + healthy[61:]
    res = sig.divergence(s(spike))
    assert res.kind == "spike" and res.step == 61 and res.evidence["recovered"]
    diverged = healthy[:60] + [50.0] + [8.0] * 39
    assert sig.divergence(s(diverged)).kind == "diverged"
    assert isinstance(sig.divergence(s(healthy[:5])), sig.TooShort)


def test_divergence_ignores_relative_noise_around_a_tiny_loss():
    # late minibatch losses bouncing 0.01 <-> 0.2 are 20x jumps, but tiny next to the initial 2.3
    values = [2.3, 2.0, 1.5, 1.0, 0.6, 0.3, 0.1] + [0.01, 0.2, 0.02, 0.01, 0.15] * 10
    assert sig.divergence(s(values)) is None


def test_exploding_gradients():
    flat = [1.0 + 0.1 * ((i * 31) % 7) for i in range(60)]
    assert sig.exploding_gradients(s(flat), clip=1.0) is None
    assert sig.exploding_gradients(s(flat[:30] + [300.0] + flat[31:]), clip=None).kind == "spike"
    rising = [10 ** (i / 20) for i in range(60)]
    assert sig.exploding_gradients(s(rising), clip=None).kind == "rising"
    high = [30.0 + (i % 3) for i in range(60)]
    res = sig.exploding_gradients(s(high), clip=1.0)
    assert res.kind == "over-clip" and res.evidence["share_clipped"] == 1.0
    assert sig.exploding_gradients(s(high), clip=0.0) is None  # clipping off: no clip to compare with


def test_vanishing_gradients():
    layers = {"a.weight": s([1e-7] * 20), "b.weight": s([0.5] * 20), "c.weight": s([0.2] * 20)}
    res = sig.vanishing_gradients(None, layers)
    assert res.kind == "layer" and res.evidence["layer"] == "a.weight"
    ok = {"a.weight": s([0.05] * 20), "b.weight": s([0.5] * 20)}
    assert sig.vanishing_gradients(s([1.0] * 20), ok) is None
    decaying = [10 ** (-i / 8) for i in range(40)]
    assert sig.vanishing_gradients(s(decaying), None).kind == "decay"
    assert isinstance(sig.vanishing_gradients(None, None), sig.TooShort)


def test_plateau_only_while_still_high():
    stuck = [2.30 - 0.0001 * i for i in range(60)]
    res = sig.plateau(s(stuck))
    assert res.kind == "plateau" and res.evidence["fraction"] >= 0.9
    converged = [2.3 * math.exp(-i / 5) + 0.05 for i in range(60)]  # long flat tail near 0.05: no finding
    assert sig.plateau(s(converged)) is None


def test_stopped_improving():
    linear = [2.0 - 0.02 * i for i in range(40)]
    assert sig.stopped_improving(s(linear), None).kind == "still-improving"
    converged = [2.3 * math.exp(-i / 5) + 0.05 for i in range(40)]
    assert sig.stopped_improving(s(converged), None) is None
    recovering = [2.0 - 0.05 * i for i in range(20)] + [8.0 - 0.1 * i for i in range(20)]
    assert sig.stopped_improving(s(recovering), None) is None  # falling, but far above its best


def test_lr_schedule():
    const = s([1e-3] * 20)
    warm_decay = s([1e-4 * (i + 1) for i in range(10)] + [1e-3 * (1 - i / 10) for i in range(10)])
    assert sig.lr_schedule(const, warmup_configured=True, decay_configured=True).evidence["missing"] == [
        "warmup",
        "decay",
    ]
    assert sig.lr_schedule(warm_decay, warmup_configured=True, decay_configured=True) is None
    assert sig.lr_schedule(const, warmup_configured=False, decay_configured=False).__class__ is sig.TooShort


def test_best_not_shipped():
    ev = s([1.0, 0.8, 0.7, 0.75, 0.9], [10, 20, 30, 40, 50], "eval_loss")
    res = sig.best_not_shipped(ev, 30, 50)
    assert res.step == 50 and res.evidence["worse_by"] == pytest.approx(0.286, abs=1e-3)
    assert sig.best_not_shipped(ev, 30, 30) is None
    acc = s([0.5, 0.9, 0.895], [10, 20, 30], "eval_accuracy")
    assert sig.best_not_shipped(acc, 20, 30, greater_is_better=True) is None  # 1% worse: within min_gap
    assert sig.best_not_shipped(acc, 20, 30, greater_is_better=True, min_gap=0.001).kind == "not-best"


def test_no_evaluation():
    train = s([1.0] * 30, range(10, 301, 10), "loss")
    assert sig.no_evaluation(train, ["loss", "learning_rate"]).step == 300
    assert sig.no_evaluation(train, ["loss", "val/acc"]) is None
    assert isinstance(sig.no_evaluation(s([1.0] * 5), ["loss"]), sig.TooShort)


# ---------------------------------------------------------------- planted pathologies, real runs


def _by_code(findings):
    out: dict[str, list[dict]] = {}
    for f in findings:
        out.setdefault(f["code"], []).append(f)
    return out


@pytest.mark.parametrize("run", HEALTHY)
def test_healthy_runs_are_silent(run, run_cli, tmp_path):
    assert scan_json(run_cli, RUNS / run, tmp_path) == []


@pytest.mark.parametrize("run", ["hf_diverge", "mlflow_diverge"])
def test_divergence_found_at_the_planted_step(run, run_cli, tmp_path):
    planted = PLANTED[run]["step"]
    found = _by_code(scan_json(run_cli, RUNS / run, tmp_path))
    (f,) = found["MLH002"]
    logged = f["evidence"]["curve"]["steps"]
    # the LR rises after the update of step `planted`: the first logged step after it can show it
    first_after = min(st for st in logged if st > planted)
    assert f["evidence"]["step"] == first_after
    assert f["evidence"]["kind"] == "diverged"


def test_overfitting_found_at_the_heldout_minimum(run_cli, tmp_path):
    truth = PLANTED["hf_overfit"]
    found = _by_code(scan_json(run_cli, RUNS / "hf_overfit", tmp_path))
    (f,) = found["MLH001"]
    # the eval loss is sampled every `eval_steps`; the truth is the trend of the per-step held-out loss
    assert abs(f["evidence"]["step"] - truth["step"]) <= truth["eval_steps"], (f["evidence"], truth)
    assert f["evidence"]["eval_rise"] >= 0.1
    assert "MLH008" in found  # the last checkpoint was shipped, not the best


def test_vanishing_layer_is_the_first_layers(run_cli, tmp_path):
    found = _by_code(scan_json(run_cli, RUNS / "pl_vanishing", tmp_path))
    (f,) = found["MLH004"]
    assert PLANTED["pl_vanishing"]["layer"] in f["evidence"]["layers_below"]
    # the vanished layers are the first ones (gradients shrink on the way back through sigmoids)
    below = {int(name.split(".")[1]) for name in f["evidence"]["layers_below"]}
    assert 0 in below and max(below) < 20
    assert f["evidence"]["largest_layer"].startswith("net.20")  # the head still learns


def test_each_planted_run_fires_only_its_rules(run_cli, tmp_path):
    expected = {
        "hf_diverge": {"MLH002", "MLH003"},
        "hf_overfit": {"MLH001", "MLH008"},
        "hf_stopped_early": {"MLH006"},
        "hf_lr_mismatch": {"MLH007"},
        "hf_no_eval": {"MLH009"},
        "pl_overfit": {"MLH001"},
        "pl_vanishing": {"MLH004", "MLH005"},
        "mlflow_diverge": {"MLH002"},
    }
    got = {run: set(_by_code(scan_json(run_cli, RUNS / run, tmp_path))) for run in expected}
    assert got == expected


def test_curve_evidence_for_reports(run_cli, tmp_path):
    (f,) = _by_code(scan_json(run_cli, RUNS / "hf_overfit", tmp_path))["MLH001"]
    c = f["evidence"]["curve"]
    assert c["series"] == "eval_loss" and len(c["steps"]) == len(c["values"]) == c["points"] == 30
    assert set(f["evidence"]["marks"]) <= set(c["steps"])


def test_too_short_is_said_with_verbose(run_cli, tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "trainer_state.json").write_text(
        json.dumps(
            {
                "log_history": [
                    {"loss": 2.0, "step": 5},
                    {"loss": 1.5, "step": 10},
                    {"eval_loss": 1.6, "step": 10},
                ]
            }
        )
    )
    code, out, _ = run_cli("scan", str(d), "--isolated", "--select", "MLH", "-v")
    assert code == 0
    assert "skipped: MLH001" in out and "1 finite eval-loss points, 5 needed" in out
    code, out, _ = run_cli("scan", str(d), "--isolated", "--select", "MLH")
    assert "skipped" not in out


def test_scan_without_histories_does_not_import_tensorboard(tmp_path):
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / "config.yaml").write_text("lr: 0.1\n")
    code = (
        "import sys; from mlaudit.cli import main; rc = main(['scan', sys.argv[1], '--isolated', "
        "'--quiet']); print(sorted(m for m in sys.modules if m.startswith(('tensorboard', 'google.protobuf'))"
        "))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=ROOT
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_rising_eval_loss_is_not_judged_when_the_selection_metric_kept_improving(run_cli, tmp_path):
    # The shape of a real speech fine-tune: eval loss climbs from the first evaluation while WER,
    # the metric the run selects checkpoints by, improves until a later checkpoint.
    log = [{"loss": 0.3 * 0.97**i, "step": 25 * (i + 1)} for i in range(200)]
    evals = [
        (1000, 0.321, 0.789),
        (2000, 0.358, 0.748),
        (3000, 0.394, 0.743),
        (4000, 0.412, 0.744),
        (5000, 0.420, 0.745),
    ]
    log += [{"eval_loss": loss, "eval_wer": wer, "step": step} for step, loss, wer in evals]
    d = tmp_path / "run"
    d.mkdir()
    state = {
        "best_metric": 0.743,
        "best_model_checkpoint": "/elsewhere/run/checkpoint-3000",
        "log_history": log,
    }
    (d / "trainer_state.json").write_text(json.dumps(state))
    code, out, _ = run_cli("scan", str(d), "--isolated", "--select", "MLH001", "-v")
    assert code == 0 and "selection metric eval_wer was best later (step 3000)" in out
    state["best_metric"], state["best_model_checkpoint"] = 0.321, "/elsewhere/run/checkpoint-1000"
    (d / "trainer_state.json").write_text(json.dumps(state))
    assert [f["code"] for f in scan_json(run_cli, d, tmp_path, "MLH001")] == ["MLH001"]


def test_history_named_directly(run_cli):
    code, out, _ = run_cli(
        "scan", str(RUNS / "hf_overfit" / "trainer_state.json"), "--isolated", "--select", "MLH"
    )
    assert code in (0, 1) and "MLH001" in out
    cut = (
        ROOT
        / "fixtures"
        / "build"
        / "cases"
        / "MLA002"
        / "fire_run_histories"
        / "hf_run"
        / "trainer_state.json"
    )
    code, out, err = run_cli("scan", str(cut), "--isolated")
    assert code == 2 and "not valid JSON (truncated?)" in err and len(err.strip().splitlines()) == 1
