"""Config verdicts: each dialect recognized by its own evidence, files that are no training
config skipped silently in a directory scan and answered with exit 0 when named, and the
verdict shown in JSON (`dialect`, `why`) and with -v. All files are written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlaudit.inputs.config_verdict import context_verdict, decide, unparsable_other
from mlaudit.inputs.yaml_lines import parse_config_text

DIALECT_SAMPLES = {
    "huggingface": "output_dir: out\nlearning_rate: 2.0e-5\nnum_train_epochs: 1\n",
    "llamafactory": "model_name_or_path: org/m\nstage: sft\nfinetuning_type: lora\ntemplate: default\n",
    "torchtune": "model:\n  _component_: torchtune.models.llama3_2.llama3_2_1b\nseed: 1\n",
    "llm-foundry": "variables: {s: 1}\ntrain_loader: {name: text}\nmax_duration: 1ep\n"
                   "global_train_batch_size: 8\n",
    "gpt-neox": '{"pipe_parallel_size": 1, "model_parallel_size": 1, "train_iters": 10}\n',
    "deepspeed": '{"train_micro_batch_size_per_gpu": 4, "zero_optimization": {"stage": 2}}\n',
    "accelerate": "compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\nnum_processes: 2\n",
    "ultralytics": "lr0: 0.01\nlrf: 0.01\nimgsz: 640\nmosaic: 1.0\n",
    "ultralytics-data": "path: data\ntrain: images/train\nval: images/val\nnames: {0: cat}\n",
    "yacs": "SOLVER:\n  BASE_LR: 0.1\nTRAIN:\n  BATCH_SIZE: 8\nRNG_SEED: 0\n",
    "omegaconf": "model:\n  target: pkg.Net\n  params: {width: 4}\n",
    "lightning": "seed_everything: 1\ntrainer:\n  max_epochs: 2\n",
    "hydra": "defaults:\n  - model: small\n  - _self_\nseed: 1\n",
    "mlaudit": "optimizer: adamw\nlr: 0.001\nprecision: bf16-mixed\nseed: 1\nepochs: 2\n",
    "timm": "model: resnet18\nopt: sgd\nsched: cosine\nsmoothing: 0.1\nmixup: 0.0\nclip_grad: null\n",
    "fairseq": "common: {fp16: true}\noptimization: {lr: [0.001]}\ncheckpoint: {save_dir: ck}\n"
               "task: {_name: translation}\n",
    # axolotl also writes TrainingArguments keys (learning_rate, output_dir): never read as those
    "axolotl": "base_model: org/m\nadapter: lora\nval_set_size: 0.05\nlearning_rate: 0.0002\n"
               "output_dir: out\nbf16: auto\n",
    "litgpt": "model_name: pythia-14m\nout_dir: out\ntrain:\n  global_batch_size: 8\n  max_norm: 1.0\n"
              "optimizer:\n  class_path: torch.optim.AdamW\n",
}


@pytest.mark.parametrize("dialect", sorted(DIALECT_SAMPLES))
def test_each_dialect_has_its_own_evidence(dialect):
    text = DIALECT_SAMPLES[dialect]
    verdict = decide(parse_config_text(text, "x.yaml").data, text)
    assert verdict.dialect == dialect
    assert verdict.why  # the evidence is always said


def test_launcher_and_data_are_not_training():
    acc = decide(parse_config_text(DIALECT_SAMPLES["accelerate"], "a.yaml").data)
    data = decide(parse_config_text(DIALECT_SAMPLES["ultralytics-data"], "d.yaml").data)
    assert (acc.kind, data.kind) == ("launcher", "data")
    assert not acc.trains and not data.trains


def test_hydra_package_header_and_group_member(tmp_path):
    text = "# @package _global_\nmodel:\n  depth: 5\n"
    assert decide(parse_config_text(text, "o.yaml").data, text).dialect == "hydra"
    (tmp_path / "conf" / "dataset").mkdir(parents=True)
    (tmp_path / "conf" / "config.yaml").write_text("defaults:\n  - dataset: small\n")
    member = tmp_path / "conf" / "dataset" / "small.yaml"
    member.write_text("name: small\nroot: data/small\n")
    data = parse_config_text(member.read_text(), "small.yaml").data
    assert decide(data).kind == "other"  # no evidence of its own...
    verdict = context_verdict(member, data)
    assert verdict is not None and verdict.dialect == "hydra" and "defaults" in verdict.why


def test_overlay_of_a_base_config(tmp_path):
    (tmp_path / "configs" / "train").mkdir(parents=True)
    (tmp_path / "configs" / "base.yaml").write_text(
        "model:\n  arch: small\noptim:\n  lr: 0.001\n  epochs: 10\ntrain:\n  batch_size_per_gpu: 8\n"
        "  dataset: a\n")
    overlay = tmp_path / "configs" / "train" / "big.yaml"
    overlay.write_text("train:\n  batch_size_per_gpu: 4\n  dataset: b\n")
    verdict = context_verdict(overlay, parse_config_text(overlay.read_text(), "big.yaml").data)
    assert verdict is not None and verdict.dialect == "omegaconf" and "overlay of" in verdict.why


NOT_TRAINING = {
    "deploy.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: apps/v1\n"
                   "kind: Deployment\nmetadata: {name: b}\n",
    "chart/templates/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n",
    "stack.yaml": "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n    Properties:\n"
                  "      BucketName: !Ref Name\n",
    "mkdocs.yml": "site_name: docs\nmarkdown_extensions:\n  - pymdownx.emoji:\n"
                  "      emoji_index: !!python/name:material.extensions.emoji.twemoji\n",
    "tsconfig.json": '{\n  // compiler settings\n  "compilerOptions": {"strict": true}\n}\n',
    "list.yaml": "- lr: 1\n- seed: 2\n",  # a list, even of training-looking keys
    "tracker.yaml": "tracker_type: bytetrack\ntrack_high_thresh: 0.5\ntrack_buffer: 30\n",
}


@pytest.mark.parametrize("name", sorted(NOT_TRAINING))
def test_named_non_training_file_is_exit_0_with_a_reason(name, run_cli, tmp_path):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(NOT_TRAINING[name])
    code, out, err = run_cli("scan", str(path), "--isolated", "--format", "json")
    assert code == 0, (out, err)
    report = json.loads(out)
    assert report["findings"] == []
    assert any("not a training config" in n for n in report["notes"])
    assert "Traceback" not in err


def test_directory_of_non_training_files_is_silent(run_cli, tmp_path):
    for name, text in NOT_TRAINING.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    code, out, err = run_cli("scan", str(tmp_path), "--isolated", "--select", "MLT,MLR,MLA002",
                             "--format", "json")
    assert code == 0, (out, err)
    assert json.loads(out)["findings"] == []


def test_a_broken_training_config_is_still_an_error(run_cli, tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("learning_rate: 1e-4\noutput_dir: [out\n")
    code, _out, err = run_cli("scan", str(path), "--isolated")
    assert code == 2
    assert "malformed YAML" in err


def test_unparsable_other_is_specific():
    assert unparsable_other("name: {{ .Values.x }}\n", "a.yaml")
    assert unparsable_other("learning_rate: [1\n", "a.yaml") is None


def test_dialect_and_evidence_in_json_and_verbose_text(run_cli, tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(DIALECT_SAMPLES["torchtune"])
    code, out, _ = run_cli("scan", str(path), "--isolated", "--format", "json", "--exit-zero")
    arts = [a for a in json.loads(out)["artifacts"] if a["kind"] == "config"]
    assert arts and arts[0]["details"]["dialect"] == "torchtune"
    assert "_component_" in arts[0]["details"]["why"]
    code, out, _ = run_cli("scan", str(path), "--isolated", "-v", "--exit-zero")
    assert "torchtune" in out and "_component_" in out


def test_library_defaults_deepspeed_clipping_is_off(run_cli, tmp_path):
    """DeepSpeed's gradient_clipping defaults to 0.0: an fp16 config without it is reported."""
    path = tmp_path / "ds.json"
    path.write_text('{"train_micro_batch_size_per_gpu": 2, "fp16": {"enabled": true}}\n')
    code, out, _ = run_cli("scan", str(path), "--isolated", "--select", "MLT002", "--format", "json",
                           "--exit-zero")
    findings = json.loads(out)["findings"]
    assert [f["location"]["pointer"] for f in findings] == ["gradient_clipping"]
    assert findings[0]["evidence"]["grad_clip"] == 0.0


@pytest.mark.parametrize(("regime_text", "fires"), [
    ("model:\n  name: mpt_causal_lm\n  d_model: 64\n", True),          # from scratch
    ("model:\n  name: hf_causal_lm\n  pretrained: true\n"
     "  pretrained_model_name_or_path: gpt2\n", False),                    # fine-tune
])
def test_weight_decay_judged_per_regime(regime_text, fires, run_cli, tmp_path):
    text = regime_text + ("train_loader: {name: text}\neval_loader: {name: text}\nmax_duration: 1ep\n"
                          "global_train_batch_size: 8\noptimizer:\n  name: decoupled_adamw\n"
                          "  lr: 1.0e-4\n  weight_decay: 0.0\n")
    (tmp_path / "run.yaml").write_text(text)
    _, out, _ = run_cli("scan", str(tmp_path / "run.yaml"), "--isolated", "--select", "MLT004",
                        "--format", "json", "--exit-zero")
    assert bool(json.loads(out)["findings"]) is fires


def test_llamafactory_keys_are_not_unknown(run_cli, tmp_path):
    path = tmp_path / "sft.yaml"
    path.write_text(DIALECT_SAMPLES["llamafactory"] + "cutoff_len: 1024\nmax_samples: 100\nlora_rank: 8\n")
    _, out, _ = run_cli("scan", str(path), "--isolated", "--select", "MLT007", "--format", "json",
                        "--exit-zero")
    assert json.loads(out)["findings"] == []


def test_realworld_corpus_is_optional():
    """The benchmark reads ../shared/realworld and says so when it is absent (never a failure)."""
    from benchmarks.realworld._common import shared_root

    root = shared_root()
    assert root is None or (Path(root) / "configs").is_dir()


def test_empty_clip_key_in_a_project_schema_means_off(run_cli, tmp_path):
    """`max_norm:` left empty in a project's own YAML is clipping off, reported with its line."""
    path = tmp_path / "train.yaml"
    path.write_text("model:\n  name: TransformerLM\n  layers: 4\noptim:\n  lr: 0.001\n  epochs: 3\n"
                    "  max_norm:\n")
    _, out, _ = run_cli("scan", str(path), "--isolated", "--select", "MLT002", "--format", "json",
                        "--exit-zero")
    findings = json.loads(out)["findings"]
    assert [(f["location"]["line"], f["location"]["pointer"]) for f in findings] == [(7, "optim.max_norm")]


def test_named_launcher_brings_its_deepspeed_file(run_cli, tmp_path):
    """accelerate (infrastructure, no training rules) is followed to the DeepSpeed JSON it names;
    that file's values are judged and reported there."""
    (tmp_path / "launch").mkdir()
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "zero3.json").write_text(
        '{\n  "train_micro_batch_size_per_gpu": "auto",\n  "fp16": {"enabled": true},\n'
        '  "gradient_clipping": 0\n}\n')
    launcher = tmp_path / "launch" / "accelerate.yaml"
    launcher.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: DEEPSPEED\n"
                        "deepspeed_config:\n  deepspeed_config_file: ../ds/zero3.json\nnum_processes: 8\n")
    code, out, _ = run_cli("scan", str(launcher), "--isolated", "--select", "MLT", "--format", "json")
    report = json.loads(out)
    found = [(f["code"], Path(f["location"]["path"]).name, f["location"]["line"]) for f in report["findings"]]
    assert found == [("MLT002", "zero3.json", 4)]
    dialects = {Path(a["path"]).name: a["details"]["dialect"]
                for a in report["artifacts"] if a["kind"] == "config"}
    assert dialects == {"accelerate.yaml": "accelerate", "zero3.json": "deepspeed"}
    assert code != 2  # the launcher and its DeepSpeed file were both read


def _yacs_project(root: Path) -> Path:
    (root / "configs" / "K400").mkdir(parents=True)
    (root / "configs" / "Base.yaml").write_text(
        "MODEL:\n  WEIGHTS: /path/to/init.pkl\nSOLVER:\n  BASE_LR: 0.1\n  OPTIMIZING_METHOD: sgd\n"
        "TRAIN:\n  BATCH_SIZE: 64\nRNG_SEED: 0\n")
    child = root / "configs" / "K400" / "adamw.yaml"
    child.write_text('_BASE_: "../Base.yaml"\nSOLVER:\n  OPTIMIZING_METHOD: adamw\n'
                     'TRAIN:\n  BATCH_SIZE: 32\n')
    (root / "configs" / "K400" / "sgd.yaml").write_text('_BASE_: "../Base.yaml"\nTRAIN:\n  BATCH_SIZE: 16\n')
    return child


def test_yacs_base_value_judged_where_it_takes_effect_reported_where_written(run_cli, tmp_path):
    """The base's lr 0.1 is fine for its SGD; a child switching to AdamW makes it implausible.
    The finding points at the base's line, once, whether the child is named or the folder scanned."""
    child = _yacs_project(tmp_path)
    for target in (child, tmp_path):
        _, out, _ = run_cli("scan", str(target), "--isolated", "--select", "MLT005,MLT014",
                            "--format", "json", "--exit-zero")
        got = sorted((f["code"], Path(f["location"]["path"]).name, f["location"]["line"])
                     for f in json.loads(out)["findings"])
        assert got == [("MLT005", "Base.yaml", 4), ("MLT014", "Base.yaml", 2)], target


def test_script_arguments_without_training_arguments_are_not_training(run_cli, tmp_path):
    # open-r1 dataset_filtering style: model + dataset + generation settings of a data script,
    # no TrainingArguments. Not a training config, but its literal values are still judged.
    text = ("model_name_or_path: org/policy-1b\nmodel_revision: main\ndataset_name: org/prompts\n"
            "num_generations: 8\ntemperature: 0.7\npass_rate_min: 0.2\n")
    verdict = decide(parse_config_text(text, "x.yaml").data, text)
    assert (verdict.dialect, verdict.kind) == ("huggingface", "data")
    (tmp_path / "filter.yaml").write_text(text)
    _, out, _ = run_cli("scan", str(tmp_path / "filter.yaml"), "--isolated", "--format", "json",
                        "--exit-zero")
    codes = {f["code"] for f in json.loads(out)["findings"]}
    assert "MLR004" in codes and "MLT001" not in codes


@pytest.mark.parametrize("rel, objective, regime", [
    ("recipes/zephyr/dpo/config_full.yaml", "dpo", "preference"),
    ("recipes/big/orpo/config_full.yaml", "orpo", "preference"),
    ("recipes/coder/sft/config_v00.yaml", "sft", "full"),
    ("recipes/coder/sft/config_qlora.yaml", "sft", "lora"),
    ("recipes/x/config_demo.yaml", None, None),
    ("notes/dpo_and_sft/config.yaml", None, None),  # two objectives named: unclear, no regime
])
def test_objective_and_regime_from_the_path(rel, objective, regime):
    from mlaudit.inputs.training_regime import objective_of, regime_for

    assert objective_of(rel, {}) == objective
    assert regime_for(objective, rel, {}) == regime


def test_online_rl_objective_from_trl_keys():
    from mlaudit.inputs.training_regime import objective_of, regime_for

    data = {"reward_funcs": ["accuracy"], "num_generations": 8}
    assert objective_of("recipes/x/config.yaml", data) == "grpo"
    assert regime_for("grpo", "recipes/x/config.yaml", data) == "rl"
