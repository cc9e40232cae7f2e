"""Hydra composition (mlaudit.inputs.hydra_compose): defaults lists, packages, `_self_` order,
overrides and `${group}` options composed as Hydra 1.1+ does, each value remembering the file
and line that wrote it. All trees are written here; nothing is imported or run."""

from __future__ import annotations

from pathlib import Path

from mlaudit.inputs.hydra_compose import compose, composed_for


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


TREE = {
    "conf/train.yaml": "# @package _global_\ndefaults:\n  - _self_\n  - trainer: default\n"
                       "  - model: small\n  - experiment: null\n  - hydra/sweeper: optuna\n"
                       "seed: 1\ntrainer:\n  max_epochs: 99\n",
    "conf/trainer/default.yaml": "max_epochs: 10\ndeterministic: false\n",
    "conf/trainer/gpu.yaml": "defaults:\n  - default\naccelerator: gpu\n",
    "conf/model/small.yaml": "width: 8\n",
    "conf/model/big.yaml": "width: 64\n",
    "conf/experiment/wide.yaml": "# @package _global_\ndefaults:\n  - override /model: big\n"
                                 "seed: 5\ntrainer:\n  max_epochs: 3\n",
    "conf/run_last.yaml": "defaults:\n  - trainer: default\nseed: 2\ntrainer:\n  max_epochs: 7\n",
}


def test_self_first_lets_group_members_override_the_primary(tmp_path):
    _write(tmp_path, TREE)
    comp = compose(tmp_path / "conf", "train.yaml")
    assert comp is not None
    # `_self_` first: trainer/default.yaml's max_epochs wins over the primary's own 99
    assert comp.data["trainer"] == {"max_epochs": 10, "deterministic": False}
    assert (comp.files["trainer.max_epochs"], comp.lines["trainer.max_epochs"]) == ("trainer/default.yaml", 1)
    assert comp.data["model"] == {"width": 8}
    # a plugin group with no file in the tree (hydra/sweeper: optuna) is skipped, not an error
    assert "hydra" not in comp.data


def test_self_absent_means_own_values_last(tmp_path):
    _write(tmp_path, TREE)
    comp = compose(tmp_path / "conf", "run_last.yaml")
    assert comp is not None and comp.data["trainer"]["max_epochs"] == 7
    assert comp.files["trainer.max_epochs"] == "run_last.yaml"


def test_overlay_override_and_global_package(tmp_path):
    _write(tmp_path, TREE)
    comp = compose(tmp_path / "conf", "train.yaml", {"experiment": "wide"})
    assert comp is not None
    assert comp.data["model"] == {"width": 64}  # `override /model: big` applied to the selection
    assert comp.data["seed"] == 5 and comp.data["trainer"]["max_epochs"] == 3
    assert comp.files["trainer.max_epochs"] == "experiment/wide.yaml"
    assert "model/small.yaml" not in comp.members


def test_member_is_judged_in_the_composition_that_selects_it(tmp_path):
    _write(tmp_path, TREE)
    found = composed_for(tmp_path / "conf" / "trainer" / "default.yaml")
    assert found is not None and found[0].primary == "train.yaml"
    # an alternative option is composed as if chosen on the command line, with what it extends
    comp, rel = composed_for(tmp_path / "conf" / "trainer" / "gpu.yaml")
    assert rel == "trainer/gpu.yaml"
    assert comp.data["trainer"] == {"max_epochs": 10, "deterministic": False, "accelerator": "gpu"}
    assert composed_for(tmp_path / "elsewhere.yaml") is None


def test_group_choices_interpolated_into_an_option(tmp_path):
    _write(tmp_path, {
        "c/config.yaml": "defaults:\n  - dataset: cifar\n  - model: net\n"
                         "  - optional pair: ${dataset}_${model}\n",
        "c/dataset/cifar.yaml": "name: cifar\n",
        "c/model/net.yaml": "layers: 7\n",
        "c/pair/cifar_net.yaml": "# @package _global_\nmodel:\n  layers: 5\n",
    })
    comp = compose(tmp_path / "c", "config.yaml")
    assert comp is not None and comp.data["model"]["layers"] == 5
    assert comp.files["model.layers"] == "pair/cifar_net.yaml"


def test_a_key_replaced_by_null_loses_its_old_lines(tmp_path):
    _write(tmp_path, {
        "c/train.yaml": "defaults:\n  - cb: default\n  - debug: quiet\n",
        "c/cb/default.yaml": "stopper:\n  patience: 3\n",
        "c/debug/quiet.yaml": "# @package _global_\ncb: null\n",
    })
    comp = compose(tmp_path / "c", "train.yaml")
    assert comp is not None and comp.data["cb"] is None
    assert "cb.stopper.patience" not in comp.lines and comp.files["cb"] == "debug/quiet.yaml"
