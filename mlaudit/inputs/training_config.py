"""Training configs mapped to one normalized view, whatever dialect they were written in.

Public API (used by checks and fixers; keep it stable):
- `TrainingConfig`: the normalized view. A field is None when the config does not say;
  `explicit` records which normalized keys the file set itself (a missing key is not the
  same as a disabled feature).
- `read_training_config(path, rel) -> TrainingConfig | None`: None when the file is not a
  training config; InputError when it is malformed.
- `config_for_checkpoint(session, file) -> TrainingConfig | None`: the config that belongs
  to a checkpoint (`--config`, a config beside it, or one named in its metadata).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlaudit.inputs import InputError, dialects, input_kind
from mlaudit.inputs.config_verdict import (
    DATA,
    LAUNCHER,
    OTHER,
    TRAINING,
    Verdict,
    context_verdict,
    decide,
    unparsable_other,
)
from mlaudit.inputs.hydra_compose import composed_for
from mlaudit.inputs.library_dialects import LIBRARY_MAPPERS
from mlaudit.inputs.py_config import merge_python_bases, read_python_config
from mlaudit.inputs.training_regime import objective_of, regime_for
from mlaudit.inputs.yaml_lines import read_config_file
from mlaudit.model import ArtifactSummary


@dataclass(frozen=True)
class TrainingConfig:
    """Normalized training configuration. Lines are 1-based, keyed by normalized field."""

    path: Path
    rel: str
    dialect: str  # see config_verdict / docs/dialects.md
    kind: str = "training"  # training | launcher | data (config_verdict.Verdict.kind)
    why: str = ""  # the evidence that decided the dialect
    regime: str | None = None  # pretraining | full | lora | preference | rl | eval, when the file says
    objective: str | None = None  # sft | dpo | orpo | grpo | ... (training_regime), when clear
    text: str = ""  # the file's text (rules that need to see how a value was written)
    raw: Mapping[str, Any] = field(default_factory=dict)
    model_target: str | None = None  # import path "pkg.module:Class" or "pkg.module.Class"
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    # One entry per model input: {"shape": [..] (without batch), "dtype": "float32",
    # "low": 0, "high": 1000} (low/high bound integer inputs such as token ids).
    input_spec: tuple[Mapping[str, Any], ...] = ()
    # How `mlaudit fix` loads the checkpoint into the model class (docs/fix.md, "Config for
    # real models"): the dotted key holding the state dict, globs of checkpoint keys the class
    # does not own that may be dropped (reported), and how `forward` is called (`kwargs`:
    # constant keyword arguments; `output`: which output is judged). Never model kwargs.
    model_state_key: str | None = None
    model_drop_keys: tuple[str, ...] = ()
    model_forward: Mapping[str, Any] = field(default_factory=dict)
    optimizer: str | None = None  # normalized lower-case name: adam, adamw, sgd, ...
    lr: float | None = None
    weight_decay: float | None = None
    precision: str | None = None  # fp32 | fp16 | bf16 | fp16-mixed | bf16-mixed | ...
    grad_clip: float | None = None  # max grad norm; 0 means disabled
    seed: int | None = None
    batch_size: int | None = None
    epochs: int | None = None
    max_steps: int | None = None
    dropout: float | None = None
    device_memory_gb: float | None = None
    deterministic: bool | None = None
    validation: bool | None = None
    artifact_role: str | None = None  # "inference"/"export" when the config says so
    explicit: frozenset[str] = frozenset()
    lines: Mapping[str, int] = field(default_factory=dict)
    # --- added by the config dialect reader (issue 5); all optional ---
    key_lines: Mapping[str, int] = field(default_factory=dict)  # every dotted key -> line
    key_paths: Mapping[str, str] = field(default_factory=dict)  # normalized field -> source key
    # Library defaults that apply to fields the file left out, and the key it would use.
    defaults: Mapping[str, Any] = field(default_factory=dict)
    default_keys: Mapping[str, str] = field(default_factory=dict)
    auto: frozenset[str] = frozenset()  # fields set to "auto": decided elsewhere (DeepSpeed)
    partial: bool = False  # composed from other files (Hydra defaults): missing != absent
    fp16: bool | None = None
    bf16: bool | None = None
    save_checkpoints: bool | None = None
    cudnn_benchmark: bool | None = None
    unknown_keys: tuple[tuple[str, str | None], ...] = ()  # (dotted key, nearest known key)
    # dotted key -> root-relative file that wrote it, for keys inherited from a base (_BASE_)
    key_files: Mapping[str, str] = field(default_factory=dict)
    duplicates: tuple[tuple[str, int, int], ...] = ()  # (dotted key, line, first line)
    code_tags: tuple[tuple[str, int, str], ...] = ()  # (dotted key, line, Python YAML tag)
    # A Hydra file judged inside its composed config reports only what it wrote itself (each
    # fact once, by the file that wrote it); what nobody wrote only from the primary config.
    reports_only: str | None = None
    reports_absent: bool = True

    def reports_on(self, path: str, line: int | None) -> bool:
        """Whether a finding at `path` (root-relative) and `line` belongs to this config."""
        if self.reports_only is None:
            return True
        return path == self.reports_only and (line is not None or self.reports_absent)

    def effective(self, name: str) -> Any:
        """The value in force: the file's own, else the library default, else None."""
        value = getattr(self, name, None)
        return value if name in self.explicit else self.defaults.get(name, value)

    def line_of(self, name: str) -> int | None:
        """Line of the key that set normalized field `name` (None when the file left it out)."""
        return self.lines.get(name)

    def file_of(self, key: str | None) -> str:
        """The file a dotted key was written in: a base config's, or this one."""
        return self.key_files.get(key or "", self.rel)

    def pointer_of(self, name: str) -> str | None:
        """Dotted source key of a field: where it is, or where the dialect would put it."""
        return self.key_paths.get(name) or self.default_keys.get(name)


_NUMERIC = {
    "lr": float, "weight_decay": float, "grad_clip": float, "seed": int, "batch_size": int,
    "epochs": int, "max_steps": int, "dropout": float, "device_memory_gb": float,
}  # fmt: skip
_BOOLS = ("deterministic", "validation", "fp16", "bf16", "save_checkpoints", "cudnn_benchmark")
_STRINGS = ("optimizer", "precision", "model_target")


def _coerce(name: str, value: Any, rel: str, line: int | None) -> Any:
    where = f"line {line}: " if line else ""
    if name in _NUMERIC:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(rel, f"{where}{name} must be a number, got {value!r}")
        if name in {"epochs", "seed", "batch_size", "max_steps"}:
            return int(value)
        return float(value)
    if name in _BOOLS:
        return value if isinstance(value, bool) else None
    if name in _STRINGS:
        return str(value).lower() if name != "model_target" else str(value)
    return value


# keys of the `model:` section that tell `mlaudit fix` how to load and call the model, not
# arguments of the model class
MODEL_LOAD_KEYS = frozenset({"input_spec", "class_path", "state_key", "drop_keys", "forward"})


def model_load_options(data: Mapping[str, Any]) -> dict[str, Any]:
    """`model.state_key`, `model.drop_keys` and `model.forward` as TrainingConfig fields
    (absent or ill-typed values are left out; `fix` reports what it could not use)."""
    model = data.get("model")
    if not isinstance(model, Mapping):
        return {}
    out: dict[str, Any] = {}
    if isinstance(model.get("state_key"), str) and model["state_key"].strip():
        out["model_state_key"] = model["state_key"].strip()
    drop = model.get("drop_keys")
    if isinstance(drop, str):
        drop = [drop]
    if isinstance(drop, (list, tuple)):
        out["model_drop_keys"] = tuple(str(d) for d in drop)
    if isinstance(model.get("forward"), Mapping):
        out["model_forward"] = dict(model["forward"])
    return out


def _model_section(data: Mapping[str, Any], dialect: str) -> tuple[Mapping[str, Any], tuple]:
    """Model kwargs (sizes for the checkpoint comparison) and the input spec."""
    model = data.get("model")
    if not isinstance(model, Mapping):
        return {}, ()
    if isinstance(model.get("init_args"), Mapping):  # LightningCLI class_path/init_args
        model = model["init_args"]
    kwargs = {k: v for k, v in model.items()
              if isinstance(k, str) and not k.startswith("_") and k not in MODEL_LOAD_KEYS}
    spec = model.get("input_spec") or data.get("input_spec") or ()
    if isinstance(spec, Mapping):
        spec = (spec,)
    if not isinstance(spec, (list, tuple)):
        spec = ()
    return kwargs, tuple(s for s in spec if isinstance(s, Mapping))


MAPPERS = {**dialects.MAPPERS, **LIBRARY_MAPPERS}


def config_verdict(path: Path, doc: Any, dialect: str | None = None) -> Verdict:
    """The verdict for a parsed file: a forced dialect (`--config` dialect or the in-file
    `# mlaudit: dialect=NAME` comment), its own content, else the configs around it."""
    override = dialects.DIALECT_COMMENT.search(doc.text[:4096]) if doc.text else None
    forced = dialect or (override.group(1) if override and override.group(1) in MAPPERS else None)
    if forced:
        source = "named with --config" if dialect else "`# mlaudit: dialect=` comment"
        kind = {"accelerate": LAUNCHER, "ultralytics-data": DATA}.get(forced, TRAINING)
        return Verdict(forced, kind, source)
    verdict = decide(doc.data, doc.text)
    if verdict.kind == OTHER and isinstance(doc.data, Mapping):
        verdict = context_verdict(path.resolve(), doc.data) or verdict
    return verdict


def merge_bases(path: Path, rel: str, doc: Any, max_depth: int = 5) -> tuple[dict, dict, dict] | None:
    """YACS/fvcore `_BASE_` inheritance (detectron2, SlowFast): the base files' values under
    the file's own, each key remembering the file (root-relative) and line it was written in,
    so a value is judged where it takes effect and reported where it is written.
    Returns (data, key -> line, key -> file for inherited keys), or None without a base."""
    chain: list[tuple[str, Any]] = []  # nearest base first
    seen = {path.resolve()}
    cur_path, cur_rel, cur = path, rel, doc
    for _ in range(max_depth):
        ref = cur.data.get("_BASE_") if isinstance(cur.data, Mapping) else None
        if not isinstance(ref, str) or not ref.strip():
            break
        base_path = (cur_path.parent / ref).resolve()
        if base_path in seen or not base_path.is_file():
            break  # a cycle or a base outside what we can read: judged as written
        seen.add(base_path)
        base_rel = posixpath.normpath(posixpath.join(posixpath.dirname(cur_rel), ref))
        try:
            base = read_config_file(base_path, base_rel)
        except InputError:
            break
        if not isinstance(base.data, Mapping):
            break
        chain.append((base_rel, base))
        cur_path, cur_rel, cur = base_path, base_rel, base
    if not chain:
        return None
    data: dict[str, Any] = {}
    lines: dict[str, int] = {}
    files: dict[str, str] = {}
    for base_rel, base in reversed(chain):
        dialects.deep_merge(data, {k: v for k, v in base.data.items() if k != "_BASE_"})
        for key, line in base.lines.items():
            lines[key], files[key] = line, base_rel
    dialects.deep_merge(data, {k: v for k, v in doc.data.items() if k != "_BASE_"})
    for key, line in doc.lines.items():
        lines[key] = line
        files.pop(key, None)
    return data, lines, files


@dataclass(frozen=True)
class ComposedView:
    """A Hydra file's composed config, keys and files in scan-relative terms."""

    data: dict[str, Any]
    lines: dict[str, int]
    files: dict[str, str]  # composed key -> scan-relative file, for keys other files wrote
    is_primary: bool
    evaluates: bool  # composed by an evaluation primary (eval.yaml, test.yaml, ...)


_EVAL_WORDS = frozenset({"eval", "evaluate", "evaluation", "test", "predict", "inference"})


def composed_view(path: Path, rel: str) -> ComposedView | None:
    """The composition (hydra_compose) a Hydra file takes part in, or None outside a tree."""
    found = composed_for(path)
    if found is None:
        return None
    comp, tree_rel = found
    if rel.endswith(tree_rel):
        prefix = rel[: len(rel) - len(tree_rel)]
    else:  # scanned from inside the tree (a member named alone): the other files lie above
        full = path.resolve().as_posix()
        if not full.endswith("/" + rel):
            return None
        scan_root = full[: len(full) - len(rel) - 1]
        prefix = posixpath.relpath(comp.root.as_posix(), scan_root) + "/"
    files = {k: prefix + f for k, f in comp.files.items() if f != tree_rel}
    stem = comp.primary.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
    return ComposedView(comp.data, comp.lines, files, tree_rel == comp.primary,
                        bool(set(re.findall(r"[a-z]+", stem)) & _EVAL_WORDS))


def build_training_config(
    path: Path, rel: str, doc: Any, dialect: str | None = None, verdict: Verdict | None = None
) -> TrainingConfig | None:
    """Map a parsed ConfigDoc to a TrainingConfig; None when it is no config we judge."""
    data = doc.data
    if not isinstance(data, Mapping):
        return None
    verdict = verdict or config_verdict(path, doc, dialect)
    if verdict.dialect is None:
        return None
    dialect = verdict.dialect
    doc_lines: dict[str, int] = dict(doc.lines)
    key_files: dict[str, str] = {}
    if dialect == "yacs" and "_BASE_" in data:
        merged = merge_bases(path, rel, doc)
        if merged is not None:
            data, doc_lines, key_files = merged
    elif dialect == "mmengine" and "_base_" in data:
        merged = merge_python_bases(path, rel, doc)
        if merged is not None:
            data, doc_lines, key_files = merged
    composed = composed_view(path, rel) if dialect == "hydra" else None
    if composed is not None:
        data, doc_lines, key_files = composed.data, composed.lines, composed.files
    resolved = dialects.resolve_interpolations(dict(data))
    mapped = MAPPERS[dialect](resolved)
    regime = mapped.values.pop("regime", None)
    objective = objective_of(rel, resolved)
    if composed is not None and composed.evaluates:
        regime = "eval"  # composed by an evaluation primary (eval.yaml): nothing is trained
    if regime is None and verdict.kind == TRAINING:
        regime = regime_for(objective, rel, resolved)
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for name, value in mapped.values.items():
        key = mapped.keys.get(name, "")
        line = doc_lines.get(key)
        if isinstance(value, str) and "${" in value:
            continue  # an interpolation that cannot be resolved statically: unknown, not wrong
        try:
            values[name] = _coerce(name, value, rel, line)
        except InputError:
            if dialect == "mlaudit":
                raise  # our own schema is strict: a non-number lr is a broken config
            continue  # other dialects: a sweep list or odd value is "unknown", not unreadable
        if line:
            lines[name] = line
    for name in mapped.auto:
        key = mapped.keys.get(name, "")
        if doc_lines.get(key):
            lines[name] = doc_lines[key]
    kwargs, spec = _model_section(resolved, dialect)
    if dialect in {"mlaudit", "hydra"} and isinstance(resolved.get("model"), Mapping):
        values.setdefault("model_target", resolved["model"].get("_target_"))
    if values.get("model_target") is None:
        values.pop("model_target", None)
    explicit = frozenset(values)
    return TrainingConfig(
        path=path,
        rel=rel,
        dialect=dialect,
        kind=verdict.kind,
        why=verdict.why,
        regime=regime,
        objective=objective,
        text=doc.text,
        raw=resolved,
        model_kwargs=kwargs,
        input_spec=spec,
        **model_load_options(resolved),
        artifact_role=role if isinstance(role := resolved.get("artifact_role"), str) else None,
        explicit=explicit,
        lines=lines,
        key_lines=doc_lines,
        key_files=key_files,
        key_paths=dict(mapped.keys),
        defaults=dict(mapped.defaults),
        default_keys=dict(mapped.default_keys),
        auto=frozenset(mapped.auto),
        partial=mapped.partial,
        reports_only=rel if composed is not None else None,
        reports_absent=composed is None or composed.is_primary,
        unknown_keys=tuple(mapped.unknown),
        duplicates=tuple(doc.duplicates),
        code_tags=tuple(doc.code_tags),
        **values,
    )


def read_config_verdict(path: Path, rel: str) -> tuple[Any, Verdict]:
    """Parse a YAML/JSON file and decide what it is. A file that does not parse but is
    recognizably something else (Kubernetes stream, Helm template, CloudFormation, mkdocs,
    JSONC) gets an "other" verdict instead of an error; a broken config stays an InputError."""
    try:
        doc = read_config_file(path, rel)
    except InputError:
        try:
            text = path.read_bytes()[:65536].decode("utf-8", errors="replace")
        except OSError:
            raise
        why = unparsable_other(text, rel)
        if why is None:
            raise
        return None, Verdict(None, OTHER, why)
    verdict = config_verdict(path, doc)
    if verdict.kind == OTHER and doc.code_tags and unparsable_other(doc.text, rel) is None:
        # A Python tag in a file we cannot place: nothing would judge it (MLT020 runs on
        # configs), and a file a loader would run code from is never "not a config, clean".
        _, line, tag = doc.code_tags[0]
        raise InputError(rel, f"line {line}: unsupported YAML tag {tag!r}")
    return doc, verdict


def read_training_config(path: Path, rel: str, *, require: bool = False,
                         dialect: str | None = None) -> TrainingConfig | None:
    """Parse a YAML/JSON file; None when it is no config we judge (what it is instead:
    `read_config_verdict`). `require` (named with `--config`): matching no dialect is an
    InputError; otherwise a file that is no training config is never an error (issue 12)."""
    if dialect is None:
        doc, verdict = read_config_verdict(path, rel)
    else:
        doc = read_config_file(path, rel)
        verdict = config_verdict(path, doc, dialect)
    if verdict.kind == OTHER or doc is None or not isinstance(doc.data, Mapping):
        if require:
            raise InputError(rel, f"line 1: not a training config ({verdict.why}); force a dialect "
                             "with `# mlaudit: dialect=NAME` (docs/dialects.md)")
        return None
    return build_training_config(path, rel, doc, verdict=verdict)


def referenced_configs(path: Path) -> list[Path]:
    """Configs a file builds on or hands on, that exist on disk: YACS `_BASE_` files, and
    accelerate's `deepspeed_config.deepspeed_config_file`, a `deepspeed:` JSON path (HF
    TrainingArguments, LLaMA-Factory). Relative paths are tried from the file's folder, then
    from each enclosing folder (launchers usually run from the repository root). Never raises."""
    try:
        doc, verdict = read_config_verdict(path, path.name)
    except (InputError, OSError):
        return []
    data = doc.data if doc is not None else None
    if not isinstance(data, Mapping) or verdict.dialect is None:
        return []
    found = []
    if verdict.dialect == "yacs":  # the _BASE_ chain, judged with the file and reported in place
        merged = merge_bases(path, path.name, doc)
        for base_rel in sorted(set(merged[2].values())) if merged else ():
            found.append((path.parent / base_rel).resolve())
    refs = [dialects.get_path(data, "deepspeed_config.deepspeed_config_file"), data.get("deepspeed")]
    for ref in refs:
        if not isinstance(ref, str) or not ref.endswith(".json"):
            continue
        for base in [path.parent, *path.parent.parents][:6]:
            candidate = (base / ref).resolve()
            if candidate.is_file():
                found.append(candidate)
                break
    return found


def config_for_checkpoint(session: Any, file: Any) -> TrainingConfig | None:
    """The training config that belongs to a checkpoint: `--config`; else one named in the
    checkpoint's metadata (`training_config`/`config` key); else the only config in the
    checkpoint's directory or its parent. Cached per checkpoint by the session."""
    return session.get("paired_training_config", file)


@input_kind("explicit_training_config", scope="project")
def load_explicit_config(session: Any, _file: Any) -> TrainingConfig | None:
    """The `--config` file, parsed once per scan however many checkpoints it pairs with."""
    explicit = session.options.training_config
    if explicit is None:
        return None
    return read_training_config(Path(explicit), Path(explicit).name, require=True)


@input_kind("paired_training_config", scope="file", file_kinds=("checkpoint",))
def load_paired_config(session: Any, file: Any) -> TrainingConfig | None:
    if session.options.training_config is not None:
        return session.get("explicit_training_config")
    meta_name = _config_named_in_metadata(session, file)
    if meta_name:
        for f in session.files:
            if f.kind == "config" and (f.rel == meta_name or f.rel.endswith("/" + meta_name)
                                       or f.path == (file.path.parent / meta_name)):
                cfg = _safe_get(session, f)
                if cfg is not None:
                    return cfg
    here = file.path.parent
    for directory in (here, here.parent):
        for f in session.files:
            if f.kind == "config" and f.path.parent == directory:
                cfg = _safe_get(session, f)
                if cfg is not None:
                    return cfg
    return None


def _safe_get(session: Any, f: Any) -> TrainingConfig | None:
    try:
        return session.get("training_config", f)
    except InputError:
        return None  # reported once as MLA002 by the inventory pass


def _config_named_in_metadata(session: Any, file: Any) -> str | None:
    try:
        info = session.get("checkpoint", file)
    except InputError:
        return None
    meta = getattr(info, "metadata", None) or {}
    for key in ("training_config", "config", "config_path", "hparams_file"):
        for k, v in meta.items():
            if (k == key or str(k).endswith("." + key)) and isinstance(v, str) and v.endswith(
                (".yaml", ".yml", ".json")
            ):
                return v
    return None


@input_kind("training_config", scope="file", file_kinds=("config", "python"))
def load_training_config(session, file) -> TrainingConfig | None:
    """A discovered YAML/JSON file as a training config (None when it is some other YAML), or a
    Python config module (mmengine `_base_` style, read with `ast`, never run; any other Python
    file is code, not a config, and is left to the code rules without a word).

    Files over the size bound are data, not configs: skipped in directory scans, an error
    when named directly."""
    from mlaudit.inputs.yaml_lines import MAX_BYTES

    if file.kind == "python":
        got = read_python_config(file.path, file.rel)
        if got is None:
            return None
        doc, why = got
        cfg = build_training_config(file.path, file.rel, doc, verdict=Verdict("mmengine", TRAINING, why))
        if cfg is not None:
            session.add_artifact(ArtifactSummary(file.rel, "config", {
                "dialect": cfg.dialect, "kind": cfg.kind, "why": cfg.why, "regime": cfg.regime}))
        return cfg
    if not session.single_file and file.size > MAX_BYTES:
        return None
    doc, verdict = read_config_verdict(file.path, file.rel)
    if verdict.kind == OTHER or doc is None or not isinstance(doc.data, Mapping):
        if session.single_file:  # named directly: say what it is (exit 0); a directory scan is silent
            session.add_artifact(ArtifactSummary(file.rel, "config", {"dialect": "not-training",
                                                                       "why": verdict.why}))
            session.notes.append(f"{file.rel}: not a training config ({verdict.why})")
        return None
    cfg = build_training_config(file.path, file.rel, doc, verdict=verdict)
    if cfg is not None:
        session.add_artifact(ArtifactSummary(file.rel, "config", {
            "dialect": cfg.dialect, "kind": cfg.kind, "why": cfg.why, "regime": cfg.regime}))
    return cfg


EXCERPT_CONTEXT = 2  # lines shown above and below each flagged line
# A key that names a credential: its value is masked in excerpts whatever the rules said (a
# literal secret must never be copied into a report that is mailed around or kept in CI).
_SECRETISH_KEY = re.compile(r"(secret|token|passw|api[_-]?key|access[_-]?key|private[_-]?key|credential|"
                            r"auth)", re.I)
_KEY_VALUE = re.compile(r"^(\s*-?\s*[\"']?[\w.\-]+[\"']?\s*[:=])(.*)$")


def _masked(line: str, flagged_secret: bool) -> str:
    m = _KEY_VALUE.match(line)
    if m is None:
        return "<line hidden: it may hold a secret>" if flagged_secret else line
    if flagged_secret or (_SECRETISH_KEY.search(m.group(1)) and m.group(2).strip()):
        return f"{m.group(1)} <value hidden by mlaudit>"
    return line


def config_excerpts(session: Any, flagged: Mapping[str, Mapping[int, bool]]) -> None:
    """Add a `config-excerpt` artifact per training config with flagged lines: those lines and
    EXCERPT_CONTEXT around them, for the HTML report. `flagged` maps a config's relative path
    to {line: whether a secret rule flagged it}. Values of secret-looking keys are masked."""
    by_rel = {f.rel: f for f in session.files if f.kind == "config"}
    for rel, lines in sorted(flagged.items()):
        file = by_rel.get(rel)
        if file is None or not lines:
            continue
        try:
            if session.get("training_config", file) is None:
                continue  # some other YAML/JSON file: not a training config
            text = session.read_text(file).splitlines()
        except InputError:
            continue
        keep = sorted({n for hit in lines for n in range(hit - EXCERPT_CONTEXT, hit + EXCERPT_CONTEXT + 1)
                       if 1 <= n <= len(text)})
        session.add_artifact(ArtifactSummary(rel, "config-excerpt", {
            "lines": {str(n): _masked(text[n - 1], lines.get(n, False)) for n in keep},
            "flagged": sorted(lines),
        }))
