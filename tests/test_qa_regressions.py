"""Regressions found by the QA pass over realistic projects (see the commit messages)."""

from __future__ import annotations

import json
import pickle

import pytest

torch = pytest.importorskip("torch")


def _codes(out: str) -> list[str]:
    return sorted(f["code"] for f in json.loads(out)["findings"])


def test_flagged_checkpoint_named_directly_reports_the_finding_not_exit_2(run_cli, tmp_path):
    # The stats loader raised "refusing to load" for a flagged file: exit 2 and no MLS001 in the
    # report, so a pre-commit hook scanning staged files one by one never showed the finding.
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("true",))

    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "x": Evil()}, path)
    code, out, err = run_cli("scan", path, "--isolated", "--format", "json")
    assert code == 1, err
    assert "MLS001" in _codes(out) and "MLA002" not in _codes(out)


def test_files_mlaudit_never_loads_are_not_inconclusive(run_cli, tmp_path):
    # A clean pickle (a label encoder, a vocabulary) and a trusted joblib file were MLA002
    # errors ("mlaudit never loads pickle files"): the static scan is the verdict on them.
    with open(tmp_path / "vocab.pkl", "wb") as fh:
        pickle.dump({"<pad>": 0, "<unk>": 1}, fh)
    code, out, err = run_cli("scan", tmp_path, "--isolated", "--select", "MLA,MLS,MLC", "--format", "json")
    assert code == 0, err
    assert _codes(out) == []


def test_model_card_sections_need_content_not_template_placeholders():
    from mlaudit.checks.docs import card_sections

    card = "\n".join([
        "# card", "## Intended use", "```python", "# classify reviews", 'pipe("great movie")', "```",
        "## Training Details", "### Training Data", "<!-- fill me -->", "[More Information Needed]",
        "## Evaluation", "### Results", "- **Accuracy:** 0.91",
        "## Bias, Risks, and Limitations", "- **Known issues:** [More Information Needed]", "TODO",
    ])
    assert card_sections(card) == {"intended-use", "evaluation"}
