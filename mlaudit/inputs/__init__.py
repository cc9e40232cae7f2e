"""Readers that turn files into parsed inputs for checks.

Each input kind registers a loader here; checks name the kind they need and the engine
loads it lazily, once per file (or once per project), only when a selected rule needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mlaudit.inputs.repo import RepoFile
    from mlaudit.session import ScanSession

Loader = Callable[["ScanSession", "RepoFile | None"], Any]


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
        INPUT_KINDS[name] = InputKind(name, scope, loader, frozenset(file_kinds))
        return loader

    return register
