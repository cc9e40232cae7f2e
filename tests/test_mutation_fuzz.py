"""A seeded slice of the mutation fuzzer (fixtures/fuzz.py; `make bench` runs >= 10,000 mutants):
no mutant of a benign checkpoint is called clean unless its loader reads exactly the tensors
mlaudit listed, and no mutant produces a traceback."""

from __future__ import annotations

import random

import pytest

from fixtures.fuzz import OPERATORS, applicable, generated_seeds, mutate, real_seeds, run_campaign
from fixtures.realmodels import Unavailable

SLICE = 160  # mutants per run of `make test` (about 15 s under load)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    found = generated_seeds(tmp_path_factory.mktemp("seeds"))
    try:
        found += [s for s in real_seeds() if s.path.stat().st_size < 2_000_000]  # keep the slice fast
    except Unavailable:
        pass  # the generated seeds still run; test_differential.py says why the real ones are absent
    return found


def test_operators_are_seeded_and_change_bytes(seeds):
    torch_zip = next(s for s in seeds if s.path.name == "state_dict.pt").path.read_bytes()
    for name in applicable(torch_zip):
        a = OPERATORS[name](torch_zip, random.Random(5))
        b = OPERATORS[name](torch_zip, random.Random(5))
        assert a == b, f"{name} is not deterministic for a given seed"
        changed = sum(OPERATORS[name](torch_zip, random.Random(i)) != torch_zip for i in range(10))
        assert changed >= 8, f"{name} left the bytes unchanged in {10 - changed}/10 tries"
    assert set(applicable(torch_zip)) == set(OPERATORS) - {"proto_varint"}
    ops = {mutate(torch_zip, random.Random(i))[0].split("+")[0] for i in range(200)}
    assert ops == set(OPERATORS) - {"proto_varint"}
    onnx_model = next(s for s in seeds if s.path.name == "tiny.onnx").path.read_bytes()
    assert "proto_varint" in applicable(onnx_model)
    changed = sum(OPERATORS["proto_varint"](onnx_model, random.Random(i)) != onnx_model for i in range(10))
    assert changed >= 8


def test_mutants_never_falsely_clean_nor_traceback(seeds, tmp_path):
    stats = run_campaign(seeds, SLICE, seed=20261202, work=tmp_path)
    assert stats.mutants == SLICE
    assert stats.tracebacks == []
    assert stats.false_clean == []
    assert stats.seed_disagreements == []
