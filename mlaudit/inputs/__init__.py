"""Readers that turn files into parsed inputs for checks.

Each input kind is listed in `INPUT_KIND_MODULES` (kind -> the module whose `@input_kind`
loader registers it); checks name the kind they need and the session imports that one module
and loads the input lazily, once per file (or once per project), only when a selected rule
needs it. The table is explicit so that a kind can never vanish silently: a table entry whose
module does not register it, or a registration missing from the table, is a RegistryError.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mlaudit.model import RegistryError

if TYPE_CHECKING:
    from mlaudit.inputs.repo import RepoFile
    from mlaudit.inputs.session import ScanSession

Loader = Callable[["ScanSession", "RepoFile | None"], Any]

# kind -> module that registers it (imported on first use, so a scan pays only for its readers)
INPUT_KIND_MODULES: dict[str, str] = {
    "project": "mlaudit.inputs.repo",
    "checkpoint": "mlaudit.inputs.checkpoint.read",
    "checkpoint_layout": "mlaudit.inputs.checkpoint.layout",
    "safetensors_shard_index": "mlaudit.inputs.checkpoint.layout",
    "checkpoint_stats": "mlaudit.inputs.checkpoint.tensor_stats",
    "checkpoint_config": "mlaudit.inputs.config_pairing",
    "model_probe": "mlaudit.inputs.model_probe",
    "checkpoint_memory": "mlaudit.inputs.model_probe",
    "training_config": "mlaudit.inputs.training_config",
    "explicit_training_config": "mlaudit.inputs.training_config",
    "paired_training_config": "mlaudit.inputs.training_config",
    "python": "mlaudit.inputs.python_code",
    "python_facts": "mlaudit.inputs.python_code",
    "training_setup": "mlaudit.inputs.python_code",
    "project_imports": "mlaudit.inputs.import_sites",
    "git": "mlaudit.inputs.git",
    "git-location": "mlaudit.inputs.git",
    "git-history": "mlaudit.inputs.git",
    "versioned": "mlaudit.inputs.git",
    "run_history": "mlaudit.inputs.history.load",
}


class InputError(Exception):
    """A file could not be read or parsed. The message is one line naming what is wrong."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


@dataclass(frozen=True)
class InputKind:
    """A kind of parsed input: project-wide (one per scan root) or one per matching file."""

    name: str
    scope: Literal["project", "file"]
    loader: Loader
    file_kinds: frozenset[str] = field(default_factory=frozenset)


INPUT_KINDS: dict[str, InputKind] = {}


def input_kind(
    name: str, *, scope: Literal["project", "file"], file_kinds: tuple[str, ...] = ()
) -> Callable[[Loader], Loader]:
    """Register `loader(session, file)`; it returns the parsed input, or None when the
    file turns out not to be of this kind (a YAML file that is no training config)."""

    def register(loader: Loader) -> Loader:
        if INPUT_KIND_MODULES.get(name) != loader.__module__:
            raise RegistryError(
                f"input kind {name!r} registered by {loader.__module__}, but INPUT_KIND_MODULES "
                f"lists {INPUT_KIND_MODULES.get(name, 'no module')} for it"
            )
        INPUT_KINDS[name] = InputKind(name, scope, loader, frozenset(file_kinds))
        return loader

    return register


def ensure_input_kind(kind: str) -> InputKind:
    """The registered input kind `kind`, importing the one module that registers it."""
    if kind not in INPUT_KINDS:
        module = INPUT_KIND_MODULES.get(kind)
        if module is None:
            raise RegistryError(f"unknown input kind {kind!r} (not in INPUT_KIND_MODULES)")
        importlib.import_module(module)
        if kind not in INPUT_KINDS:
            raise RegistryError(f"{module} does not register input kind {kind!r}")
    return INPUT_KINDS[kind]
