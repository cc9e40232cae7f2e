"""Start-up cost of a scan (issue 13): plugin entry points read without importlib.metadata,
the parsed rule catalog kept in the user's cache dir, markdown-it and pathspec imported only
when a scan meets Markdown or a .gitignore. Each shortcut must give exactly what the slow
path gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from importlib import metadata

import pytest

from mlaudit import catalog, plugins
from tests.casekit import ROOT

MLAUDIT_GROUPS = (plugins.RULES_GROUP, plugins.FIXERS_GROUP, plugins.FORMATS_GROUP)


def _as_tuples(eps) -> list[tuple[str, str, str, str]]:
    return sorted((ep.name, ep.value, ep.group, ep.dist.name) for ep in eps)


def test_entry_point_scan_equals_importlib_metadata_for_every_group():
    groups = {ep.group for dist in metadata.distributions() for ep in dist.entry_points}
    assert "console_scripts" in groups  # the venv holds mlaudit's own script at least
    for group in sorted(groups | set(MLAUDIT_GROUPS) | {"no.such.group"}):
        found = plugins._scan_entry_points(group)
        assert found is not None
        assert _as_tuples(found) == _as_tuples(metadata.entry_points(group=group)), group


def test_entry_point_load_resolves_the_same_object():
    [ours] = [ep for ep in plugins._scan_entry_points("console_scripts") if ep.name == "mlaudit"]
    [theirs] = metadata.entry_points(group="console_scripts", name="mlaudit")
    assert ours.load() is theirs.load()
    bad = plugins._EntryPoint("x", "not a module!", "g", plugins._Dist("d"))
    with pytest.raises(ValueError, match="malformed entry point value"):
        bad.load()


def test_a_zip_on_sys_path_is_left_to_importlib_metadata(tmp_path, monkeypatch):
    archive = tmp_path / "dists.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped_dist-1.0.dist-info/METADATA", "Name: zipped-dist\nVersion: 1.0\n\n")
        zf.writestr("zipped_dist-1.0.dist-info/entry_points.txt", "[mlaudit.formats]\nzipfmt = zipped.fmt\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(archive)])
    plugins._dist_infos.cache_clear()
    try:
        assert plugins._scan_entry_points(plugins.FORMATS_GROUP) is None
        names = {ep.name for ep in plugins._entry_points(plugins.FORMATS_GROUP)}
        assert "zipfmt" in names  # found, through importlib.metadata
    finally:
        monkeypatch.undo()
        plugins._dist_infos.cache_clear()


def _rules(folder, text: str, name: str = "a.yaml"):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_catalog_cache_gives_what_pyyaml_gives_and_follows_edits(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLAUDIT_NO_CACHE", raising=False)
    folder = _rules(tmp_path / "rules", "rules:\n  - code: MLS001\n    what: |\n      two\r\n      lines\n")
    first = catalog._documents(folder, cached=True)
    cache = catalog._cache_file(folder)
    assert cache is not None and cache.is_file()
    assert first == catalog._documents(folder, cached=False)
    assert first[0][1]["rules"][0]["what"] == "two\nlines\n"
    # a hit never imports PyYAML
    monkeypatch.setitem(sys.modules, "yaml", None)
    assert catalog._documents(folder, cached=True) == first
    monkeypatch.delitem(sys.modules, "yaml")
    # an edit changes the key: parsed again, and the cache follows
    _rules(folder, "rules:\n  - code: MLS002\n")
    edited = catalog._documents(folder, cached=True)
    assert edited[0][1] == {"rules": [{"code": "MLS002"}]}
    assert json.loads(cache.read_text())["docs"] == [edited[0][1]]
    # a damaged cache file is rebuilt, never trusted
    cache.write_text('{"key": ')
    assert catalog._documents(folder, cached=True) == edited
    assert json.loads(cache.read_text())["docs"] == [edited[0][1]]


def test_catalog_cache_keeps_only_what_json_gives_back_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLAUDIT_NO_CACHE", raising=False)
    folder = _rules(tmp_path / "rules", "rules:\n  - code: MLS001\n    since: 2024-01-02\n    1: int key\n")
    docs = catalog._documents(folder, cached=True)
    assert docs == catalog._documents(folder, cached=False)
    assert not catalog._cache_file(folder).exists()  # a date and an int key: not cached


def test_cached_and_uncached_catalogs_are_equal(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    catalog.load_catalog.cache_clear()
    try:
        monkeypatch.setenv("MLAUDIT_NO_CACHE", "1")
        plain = catalog.load_catalog()
        catalog.load_catalog.cache_clear()
        monkeypatch.delenv("MLAUDIT_NO_CACHE")
        catalog.load_catalog()  # writes the cache
        catalog.load_catalog.cache_clear()
        assert catalog.load_catalog() == plain  # read from it
        assert any((tmp_path / "cache" / "mlaudit").glob("catalog-*.json"))
    finally:
        catalog.load_catalog.cache_clear()


RUNNER = r"""
import sys
from mlaudit.cli import main
code = main(sys.argv[1:])
print("IMPORTED=" + ",".join(m for m in ("importlib.metadata", "yaml", "markdown_it", "pathspec")
                             if m in sys.modules), file=sys.stderr)
"""


def test_a_checkpoint_folder_scan_skips_the_heavy_helpers(tmp_path):
    """No README, no .gitignore, no YAML in the tree, catalog cached: none of the four."""
    import pickle

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "model.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("MLAUDIT_NO_CACHE", None)
    for _ in range(2):  # the first run writes the catalog cache
        proc = subprocess.run([sys.executable, "-c", RUNNER, "scan", str(tree), "--isolated", "-q"],
                              capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    line = [x for x in proc.stderr.splitlines() if x.startswith("IMPORTED=")]
    assert line == ["IMPORTED="], proc.stderr
    # and a README still gets its Markdown parsed
    (tree / "README.md").write_text("# Model\n\n```\n# not a heading\n```\n")
    proc = subprocess.run([sys.executable, "-c", RUNNER, "scan", str(tree), "--isolated", "-q"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert "markdown_it" in proc.stderr.splitlines()[-1]
