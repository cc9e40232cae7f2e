"""Rules are data: YAML metadata and registered implementations must agree both ways, and
every rule must be exercised by a firing and a passing fixture (or a named unit test)."""

from __future__ import annotations

import re

from mlaudit.catalog import load_catalog
from mlaudit.checks.registry import implementations
from mlaudit.engine import ENGINE_CODES
from tests.casekit import ROOT, all_cases


def test_every_rule_has_an_implementation_and_vice_versa():
    catalog = set(load_catalog())
    impls = set(implementations())
    assert impls - catalog == set(), "implementations without metadata"
    assert catalog - impls - set(ENGINE_CODES) == set(), "metadata without implementation"


def test_every_param_has_a_default_and_doc():
    for meta in load_catalog().values():
        for p in meta.params.values():
            assert p.default is not None, f"{meta.code}.{p.name} has no default"
            assert p.doc, f"{meta.code}.{p.name} is undocumented"


def test_every_rule_is_documented():
    for meta in load_catalog().values():
        assert meta.summary and meta.what and meta.why, f"{meta.code} lacks what/why/summary"


def _test_exists(ref: str) -> bool:
    path, _, name = ref.partition("::")
    file = ROOT / path
    return file.is_file() and re.search(rf"^def {re.escape(name)}\(", file.read_text(), re.M) is not None


def test_every_rule_has_firing_and_passing_fixture():
    cases = all_cases()
    missing = []
    for meta in load_catalog().values():
        kinds = {c.kind for c in cases if c.code == meta.code}
        if {"fire", "pass"} <= kinds:
            continue
        if meta.tested_by and _test_exists(meta.tested_by):
            continue
        missing.append(f"{meta.code} (has {sorted(kinds) or 'no cases'})")
    assert missing == []
