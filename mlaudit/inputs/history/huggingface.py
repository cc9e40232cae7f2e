"""Hugging Face `trainer_state.json`: `log_history`, `best_model_checkpoint`, `best_metric`.

The file is plain JSON (NaN/Infinity tokens included, as Python's json writes them); nothing
else in the checkpoint folder is read here (`training_args.bin` is a pickle and stays untouched).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from mlaudit.inputs import InputError
from mlaudit.inputs.history import RunHistory, check_size, make_history, to_float

FILE_NAME = "trainer_state.json"
# Keys of a log_history entry that are bookkeeping, not curves.
_NOT_SERIES = frozenset(
    {
        "step",
        "epoch",
        "total_flos",
        "train_runtime",
        "train_samples_per_second",
        "train_steps_per_second",
        "eval_runtime",
        "eval_samples_per_second",
        "eval_steps_per_second",
        "num_input_tokens_seen",
    }
)


def read_trainer_state(path: Path, rel: str) -> RunHistory:
    """Parse one trainer_state.json; InputError (one line) when it is truncated or not one."""
    check_size(path, rel)
    try:
        data = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(rel, f"cannot read trainer state: {err}") from None
    except json.JSONDecodeError as err:
        raise InputError(
            rel, f"trainer state is not valid JSON (truncated?): {err.msg} at line {err.lineno}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("log_history"), list):
        raise InputError(rel, "trainer state has no log_history list")
    points: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for i, entry in enumerate(data["log_history"]):
        if not isinstance(entry, dict):
            raise InputError(rel, f"log_history[{i}] is {type(entry).__name__}, expected an object")
        step = entry.get("step")
        if isinstance(step, bool) or not isinstance(step, int):
            continue  # an entry without a step cannot be placed on the curve
        if "train_runtime" in entry:
            continue  # the end-of-training summary: its train_loss is a run average, not a point
        for key, value in entry.items():
            v = to_float(value)
            if key not in _NOT_SERIES and v is not None:
                points[key].append((step, v))
    run_dir = path.parent.parent if path.parent.name.startswith("checkpoint-") else path.parent
    return make_history(
        "huggingface",
        path=path,
        rel=rel,
        run_dir=run_dir,
        points=points,
        best_checkpoint=_str(data.get("best_model_checkpoint")),
        best_metric=to_float(data.get("best_metric")),
        checkpoint_steps=_checkpoint_steps(run_dir),
        max_steps=_int(data.get("max_steps")),
        global_step=_int(data.get("global_step")),
        params=_train_params(data),
    )


def _checkpoint_steps(run_dir: Path) -> tuple[int, ...]:
    steps = []
    try:
        for child in run_dir.iterdir():
            tail = child.name.removeprefix("checkpoint-")
            if tail != child.name and tail.isdigit() and child.is_dir():
                steps.append(int(tail))
    except OSError:
        return ()
    return tuple(sorted(steps))


def _train_params(data: dict[str, Any]) -> dict[str, Any]:
    keep = ("logging_steps", "eval_steps", "save_steps", "train_batch_size", "num_train_epochs")
    return {k: data[k] for k in keep if k in data}


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None
