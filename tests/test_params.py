"""Typed rule parameters: built from the YAML schema, validated once, read as attributes."""

from __future__ import annotations

import pytest

from mlaudit.catalog import CatalogError, _param, load_catalog
from mlaudit.params import RuleParams


def test_every_rule_builds_typed_params_from_its_defaults():
    python_type = {"int": int, "float": float, "bool": bool, "str": str, "list[str]": tuple}
    for meta in load_catalog().values():
        params = RuleParams.build(meta)
        for spec in meta.params.values():
            value = getattr(params, spec.name.replace("-", "_"))
            assert type(value) is python_type[spec.type], (meta.code, spec.name, value)


def test_overrides_are_coerced_and_checked():
    meta = load_catalog()["MLC002"]
    assert meta.params["min-ratio"].type == "float"
    params = RuleParams.build(meta, {"MLC002": {"min-ratio": 2}})
    assert params.min_ratio == 2.0 and isinstance(params.min_ratio, float)
    with pytest.raises(ValueError, match="min-ratio must be float"):
        RuleParams.build(meta, {"MLC002": {"min-ratio": "many"}})
    with pytest.raises(ValueError, match="has no param 'nope'"):
        RuleParams.build(meta, {"MLC002": {"nope": 1}})


def test_a_misspelt_attribute_names_the_rule():
    params = RuleParams.build(load_catalog()["MLS004"])
    assert params.min_tensors == 1
    with pytest.raises(AttributeError, match="MLS004 has no param 'min_tensor'"):
        _ = params.min_tensor


def test_catalog_rejects_a_default_of_the_wrong_type():
    with pytest.raises(CatalogError, match="default of param max-mb must be float"):
        _param("MLV002", "max-mb", {"type": "float", "default": "big", "doc": "d"})
    with pytest.raises(CatalogError, match="no valid name"):
        _param("MLV002", "max mb", {"type": "float", "default": 1.0, "doc": "d"})
