"""Hydra composition, done the way Hydra 1.1+ composes a config but executing nothing.

`composed_for(path, rel)` answers, for a YAML file inside a Hydra config tree, the composed
config the file takes part in: the primary config (a file at the tree's root with a
`defaults:` list naming config groups) with every selected group member merged at its package.
What is read:
- defaults entries `group: option`, `group@pkg: option`, `optional group: option`,
  `/abs/group: option`, `group: null` (nothing), lists of options, plain `name` entries (a
  config of the same group), and `_self_` (where the file's own values go; last when absent);
- `override /group: option` in any selected config (an experiment overlay's), applied to the
  selection before composing;
- `# @package _global_`, `# @package _group_` or a dotted package in a file's header; otherwise
  a group member lands under its group's dotted path.
Merging is OmegaConf's: mappings merge key by key, anything else replaces. Every composed key
remembers the file and line that wrote the value in effect, so a value is judged where it takes
effect and reported where it is written.

A member that the primary's default selection does not include (`trainer/gpu.yaml`,
`experiment/example.yaml`) is composed as if chosen on the command line (`trainer=gpu`).
Groups whose files are not in the tree (Hydra plugins such as `hydra/sweeper: optuna`) are
skipped. Anything unreadable makes the answer None: the file is then judged on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlaudit.inputs import InputError
from mlaudit.inputs.dialects import deep_merge, has_path
from mlaudit.inputs.yaml_lines import ConfigDoc, read_config_file

_PACKAGE = re.compile(r"^#\s*@package\s+(\S+)", re.M)
_MAX_FILES = 200  # a tree larger than this is not composed (judged file by file)
_MAX_DEPTH = 3  # folders walked up from a file to find its tree's root
_PRIMARY_NAMES = ("train", "config", "main", "default")


@dataclass
class Composed:
    """The composed config: data, composed key -> line, composed key -> root-relative file."""

    primary: str  # root-relative primary config
    root: Path = Path(".")  # the tree's root folder
    data: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)  # root-relative files, in merge order


@dataclass(frozen=True)
class _Entry:
    group: str | None  # absolute group path ("trainer", "hydra/launcher"); None: `_self_`
    option: Any  # str | list | None
    package: str | None  # `@pkg` given in the entry
    override: bool = False
    name_only: bool = False  # a plain `- name` entry: a config of the containing group


# Parsed files shared by every composition in the process (a tree of N members is composed
# once per member): keyed by path, size and mtime so an edited file is read again.
_PARSED: dict[tuple[str, int, int], ConfigDoc | None] = {}
_PARSED_MAX = 4096


def _read(path: Path, rel: str) -> ConfigDoc | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _PARSED:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        try:
            _PARSED[key] = read_config_file(path, rel) if path.is_file() else None
        except (InputError, OSError):
            _PARSED[key] = None
    return _PARSED[key]


class _Tree:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.docs: dict[str, ConfigDoc | None] = {}

    def doc(self, rel: str) -> ConfigDoc | None:
        if rel not in self.docs:
            self.docs[rel] = _read(self.root / rel, rel)
        return self.docs[rel]

    def member(self, group: str, option: str) -> str | None:
        for ext in (".yaml", ".yml"):
            rel = f"{group}/{option}{ext}" if group else f"{option}{ext}"
            if self.doc(rel) is not None:
                return rel
        return None


def _group_of(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


def _absolute(group: str, here: str) -> str:
    group = group.strip()
    if group.startswith("/"):
        return group.strip("/")
    return f"{here}/{group}" if here else group


def _entries(doc: ConfigDoc, rel: str) -> list[_Entry]:
    """The defaults list of a config, groups made absolute."""
    data = doc.data if isinstance(doc.data, Mapping) else {}
    raw = data.get("defaults")
    here = _group_of(rel)
    out: list[_Entry] = []
    for item in raw if isinstance(raw, list) else ():
        if item == "_self_":
            out.append(_Entry(None, None, None))
        elif isinstance(item, str):
            out.append(_Entry(_absolute(_group_of(item), here) if "/" in item else here,
                              item.rsplit("/", 1)[-1], None, name_only=True))
        elif isinstance(item, Mapping) and len(item) == 1:
            key, option = next(iter(item.items()))
            words = str(key).split()
            override = words[0] == "override"
            words = [w for w in words if w not in ("override", "optional")]
            if not words:
                continue
            group, _, package = words[0].partition("@")
            out.append(_Entry(_absolute(group, here), option, package or None, override=override))
    return out


def _package(doc: ConfigDoc, group: str, given: str | None, parent: str) -> str:
    """Where a config's keys land: its `# @package` header, the entry's `@pkg`, else its group."""
    header = _PACKAGE.search(doc.text[:2048]) if doc.text else None
    package = header.group(1) if header else given
    if package is None or package == "_group_":
        return group.replace("/", ".")
    if package == "_global_":
        return ""
    if package == "_here_":
        return parent
    package = package.replace("_group_", group.replace("/", "."))
    return package.removeprefix("_global_.")


_CHOICE = re.compile(r"\$\{([^${}:]+)\}")


def _interpolate(option: Any, picked: Mapping[str, str]) -> Any:
    """`${dataset}_${model}` in an option names the options chosen for those groups; an
    interpolation that names no chosen group leaves nothing to select (None)."""
    if not isinstance(option, str) or "${" not in option:
        return option
    names = _CHOICE.findall(option)
    if any(n.strip() not in picked for n in names):
        return None
    return _CHOICE.sub(lambda m: picked[m.group(1).strip()], option)


def _expand(tree: _Tree, rel: str, package: str, chosen: dict[str, Any],
            out: list[tuple[str, str]], seen: set[str], picked: dict[str, str] | None = None) -> None:
    """Append (file, package) in merge order for `rel` and everything its defaults select;
    `picked` collects the option chosen for each group (for `${group}` in later options)."""
    picked = {} if picked is None else picked
    doc = tree.doc(rel)
    if doc is None or rel in seen or len(seen) > _MAX_FILES:
        return
    seen = seen | {rel}
    self_at: int | None = None
    for entry in _entries(doc, rel):
        if entry.group is None:
            self_at = len(out)
            continue
        if entry.override:
            continue  # applied to the selection (see _overrides)
        option = chosen.get(entry.group, entry.option) if not entry.name_only else entry.option
        option = _interpolate(option, picked)
        if isinstance(option, str) and not entry.name_only:
            picked[entry.group] = option
        for opt in option if isinstance(option, list) else [option]:
            if opt is None or str(opt) == "null":
                continue
            member = tree.member(entry.group, str(opt))
            if member is None:
                continue  # a plugin's group or a missing optional member
            member_doc = tree.doc(member)
            assert member_doc is not None
            _expand(tree, member, _package(member_doc, entry.group, entry.package, package),
                    chosen, out, seen, picked)
    mine = (rel, package)
    if self_at is None:
        out.append(mine)  # Hydra >= 1.1: a config's own values come after its defaults
    else:
        out.insert(self_at, mine)


def _overrides(tree: _Tree, files: list[tuple[str, str]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for rel, _ in files:
        doc = tree.doc(rel)
        for entry in _entries(doc, rel) if doc is not None else ():
            if entry.override and entry.group is not None:
                found[entry.group] = entry.option
    return found


def compose(root: Path, primary: str, chosen: Mapping[str, Any] | None = None) -> Composed | None:
    """Compose `primary` (root-relative) with the group choices in `chosen` (as on a command
    line: {"trainer": "gpu"}), applying `override` entries of the selected configs."""
    tree = _Tree(root)
    if tree.doc(primary) is None:
        return None
    picks = dict(chosen or {})
    files: list[tuple[str, str]] = []
    _expand(tree, primary, "", picks, files, set())
    overrides = _overrides(tree, files)
    if overrides:
        picks = {**overrides, **(chosen or {})}  # the command line wins over config overrides
        files = []
        _expand(tree, primary, "", picks, files, set())
    out = Composed(primary=primary, root=root)
    for rel, package in files:
        doc = tree.doc(rel)
        if doc is None or not isinstance(doc.data, Mapping):
            continue
        own = {k: v for k, v in doc.data.items() if k != "defaults"}
        placed: dict[str, Any] = own
        for part in reversed(package.split(".") if package else []):
            placed = {part: placed}
        deep_merge(out.data, placed)
        for key, line in doc.lines.items():
            if key == "defaults" or key.startswith("defaults."):
                continue
            full = f"{package}.{key}" if package else key
            out.lines[full], out.files[full] = line, rel
        out.members.append(rel)
    for key in [k for k in out.lines if not has_path(out.data, k)]:
        del out.lines[key], out.files[key]  # replaced by a later scalar or null
    return out


def _defaults_groups(doc: ConfigDoc, root: Path) -> set[str]:
    groups = set()
    for entry in _entries(doc, ""):
        if entry.group and not entry.name_only and (root / entry.group).is_dir():
            groups.add(entry.group)
    return groups


def find_root(path: Path) -> tuple[Path, list[str]] | None:
    """The Hydra tree a file is in: the nearest folder (the file's own or up to 3 above) holding
    a primary config whose defaults list names at least one group folder beside it; with the
    primaries found there (root-relative), the likeliest first."""
    folder = path.parent
    for _ in range(_MAX_DEPTH + 1):
        primaries = []
        for cand in sorted(folder.glob("*.y*ml")):
            doc = _read(cand, cand.name)
            data = doc.data if doc is not None else None
            if isinstance(data, Mapping) and isinstance(data.get("defaults"), list) \
                    and doc is not None and _defaults_groups(doc, folder):
                primaries.append(cand.name)
        if primaries:
            primaries.sort(key=lambda n: (n.rsplit(".", 1)[0] not in _PRIMARY_NAMES, n))
            return folder, primaries
        if folder.parent == folder:
            break
        folder = folder.parent
    return None


def composed_for(path: Path) -> tuple[Composed, str] | None:
    """(the composition `path` takes part in, its root-relative name), or None when it is in no
    Hydra tree. A primary is composed as it is; a member by the first primary whose default
    selection includes it, else by the first primary offering its group, with it chosen."""
    found = find_root(path.resolve())
    if found is None:
        return None
    root, primaries = found
    try:
        rel = path.resolve().relative_to(root).as_posix()
    except ValueError:
        return None
    if rel in primaries:
        comp = compose(root, rel)
        return (comp, rel) if comp is not None else None
    for primary in primaries:
        comp = compose(root, primary)
        if comp is not None and rel in comp.members:
            return comp, rel
    group, _, name = rel.rpartition("/")
    option = name.rsplit(".", 1)[0]
    for primary in primaries:
        doc = _Tree(root).doc(primary)
        if doc is not None and group in {e.group for e in _entries(doc, primary)}:
            comp = compose(root, primary, {group: option})
            if comp is not None and rel in comp.members:
                return comp, rel
    return None
