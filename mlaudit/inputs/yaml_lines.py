"""YAML/JSON reading with a line number for every key, duplicate-key detection and hard bounds.

`yaml.safe_load` loses line numbers, silently keeps the last of two duplicate keys and
expands aliases without limit (a "billion laughs" document of a few hundred bytes becomes
gigabytes). Here the document is only *composed* (a node graph, linear in the file size)
and converted to plain Python by our own walk that counts every node it produces, so alias
expansion is bounded, and records `dotted.key.path -> line` as it goes.

Public API:
- `ConfigDoc`: data (plain dict/list/scalars), lines (path -> 1-based line), duplicates.
- `read_config_file(path, rel, max_bytes=...) -> ConfigDoc` (raises InputError, one line).
- `parse_config_text(text, rel, json_mode=False) -> ConfigDoc`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlaudit.inputs import InputError

MAX_BYTES = 4 * 1024 * 1024  # a training config is a few KB; 4 MB is data, not config
MAX_NODES = 50_000  # values produced after alias expansion (real configs: < 2,000)
MAX_DEPTH = 64  # nesting depth of the converted document
MERGE_TAG = "tag:yaml.org,2002:merge"
STANDARD_TAGS = frozenset({"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map", "tag:yaml.org,2002:omap",
                           "tag:yaml.org,2002:set", "tag:yaml.org,2002:pairs"})
# PyYAML's Python tags (`!!python/object/apply:eval`, `!!python/name:...`): a full/unsafe loader
# (fvcore's CfgNode uses yaml.unsafe_load) imports or calls what they name.
CODE_TAG_PREFIX = "tag:yaml.org,2002:python/"


@dataclass(frozen=True)
class CodeTag:
    """Stands in for a value written with a Python tag: never constructed, never run."""

    tag: str

    def __str__(self) -> str:
        return "!!" + self.tag.removeprefix("tag:yaml.org,2002:")


@dataclass(frozen=True)
class ConfigDoc:
    """A parsed config file: plain data plus where each key was written."""

    data: Any
    # "a.b.0.c" -> 1-based line of the key (or of the list item)
    lines: dict[str, int] = field(default_factory=dict)
    # (path, line of the repeated key, line of the first occurrence)
    duplicates: tuple[tuple[str, int, int], ...] = ()
    text: str = ""
    # (path, line, tag) of values written with a Python tag (see CODE_TAG_PREFIX)
    code_tags: tuple[tuple[str, int, str], ...] = ()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def decode_config_bytes(raw: bytes, rel: str) -> str:
    """UTF-8 text without a BOM; InputError naming the line of the first bad byte."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(rel, "line 1: UTF-16 encoded (byte-order mark); save the file as UTF-8")
    if b"\x00" in raw[:8192]:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise InputError(rel, f"line {line}: NUL byte: binary data, not a text config")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InputError(rel, f"line {line}: not valid UTF-8 (byte 0x{raw[err.start]:02x})") from None


def read_config_file(path: Path, rel: str, max_bytes: int = MAX_BYTES) -> ConfigDoc:
    """Read and parse a YAML or JSON file (JSON by suffix) within the size bound."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as err:
        raise InputError(rel, f"cannot read: {err.strerror}") from None
    if len(raw) > max_bytes:
        raise InputError(rel, f"too large for a training config (over {max_bytes // (1024 * 1024)} MB)")
    text = decode_config_bytes(raw, rel)
    return parse_config_text(text, rel, json_mode=path.suffix.lower() == ".json")


class _Walker:
    """Converts a composed node graph to plain data, bounded in nodes and depth."""

    def __init__(self, loader: Any, rel: str) -> None:
        self.loader = loader
        self.rel = rel
        self.count = 0
        self.lines: dict[str, int] = {}
        self.duplicates: list[tuple[str, int, int]] = []
        self.code_tags: list[tuple[str, int, str]] = []

    def _budget(self, node: Any, depth: int) -> None:
        self.count += 1
        if self.count > MAX_NODES:
            raise InputError(self.rel, f"line {node.start_mark.line + 1}: more than {MAX_NODES} "
                             "values after alias expansion: an alias bomb, or data rather than a config")
        if depth > MAX_DEPTH:
            raise InputError(self.rel, f"line {node.start_mark.line + 1}: nested deeper than "
                             f"{MAX_DEPTH} levels")

    def convert(self, node: Any, path: str = "", depth: int = 0) -> Any:
        import yaml

        self._budget(node, depth)
        if node.tag.startswith(CODE_TAG_PREFIX):  # recorded, never constructed
            self.code_tags.append((path, node.start_mark.line + 1, node.tag))
            return CodeTag(node.tag)
        if isinstance(node, yaml.ScalarNode):
            return self.loader.construct_object(node, deep=True)
        if node.tag not in STANDARD_TAGS:  # e.g. !!python/object: refused, never constructed
            raise InputError(self.rel, f"line {node.start_mark.line + 1}: unsupported YAML tag {node.tag!r}")
        if isinstance(node, yaml.SequenceNode):
            out = []
            for i, item in enumerate(node.value):
                sub = f"{path}.{i}" if path else str(i)
                self.lines.setdefault(sub, item.start_mark.line + 1)
                out.append(self.convert(item, sub, depth + 1))
            return out
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            merges: list[Any] = []
            first_line: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == MERGE_TAG:
                    merges.append(value_node)
                    continue
                if isinstance(key_node, yaml.ScalarNode):
                    key = self.loader.construct_object(key_node, deep=True)
                else:
                    key = str(self.convert(key_node, path, depth + 1))
                try:
                    hash(key)
                except TypeError:
                    key = str(key)
                line = key_node.start_mark.line + 1
                sub = f"{path}.{key}" if path else str(key)
                if key in first_line:
                    self.duplicates.append((sub, line, first_line[key]))
                else:
                    first_line[key] = line
                self.lines[sub] = line  # the last occurrence is the one that takes effect
                result[key] = self.convert(value_node, sub, depth + 1)
            for merge in merges:  # `<<: *base`: explicit keys win over merged ones
                sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
                for src in sources:
                    merged = self.convert(src, path, depth + 1)
                    if isinstance(merged, dict):
                        for k, v in merged.items():
                            result.setdefault(k, v)
            return result
        raise InputError(self.rel, f"line {node.start_mark.line + 1}: unsupported YAML node")


def parse_config_text(text: str, rel: str, json_mode: bool = False) -> ConfigDoc:
    """Parse YAML (JSON is a YAML subset) into a ConfigDoc; errors are one line with a line number."""
    import yaml

    if json_mode:
        # PyYAML accepts things JSON does not (trailing commas, comments): JSON decides validity.
        import json

        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(rel, f"line {err.lineno}: malformed JSON: {err.msg}") from None
        except RecursionError:
            raise InputError(rel, "nested too deeply to parse") from None
    # Composing builds every node before our bounded walk starts: refuse node floods up front
    # (lines + commas + colons over-count values, so a real config is never refused here).
    rough = text.count("\n") + text.count(",") + text.count(":")
    if rough > 3 * MAX_NODES:
        raise InputError(rel, f"too many lines/items for a training config ({rough} > {3 * MAX_NODES})")
    # libyaml's composer is ~10x faster than the pure-Python one; same nodes and marks.
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                return ConfigDoc(None, {}, (), text)
            walker = _Walker(loader, rel)
            data = walker.convert(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        if json_mode:
            return _parse_json(text, rel)
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise InputError(rel, f"{where}malformed YAML: {_one_line(problem)}") from None
    except RecursionError:
        raise InputError(rel, "nested too deeply to parse") from None
    return ConfigDoc(data, walker.lines, tuple(walker.duplicates), text, tuple(walker.code_tags))


def _parse_json(text: str, rel: str) -> ConfigDoc:
    """Fallback for JSON that PyYAML rejects (tabs as whitespace): no line numbers then."""
    import json

    duplicates: list[tuple[str, int, int]] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                duplicates.append((k, 1, 1))
            out[k] = v
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as err:
        raise InputError(rel, f"line {err.lineno}: malformed JSON: {err.msg}") from None
    except RecursionError:
        raise InputError(rel, "nested too deeply to parse") from None
    return ConfigDoc(data, {}, tuple(duplicates), text)
