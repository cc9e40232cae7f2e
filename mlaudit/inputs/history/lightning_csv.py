"""Lightning CSVLogger `metrics.csv` (+ the `hparams.yaml` beside it).

One row per logging call, a `step` column (and usually `epoch`), one column per logged name,
empty cells where a row did not log that name. `hparams.yaml` is read as data through the
project's YAML reader (safe loading, no tags executed).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlaudit.inputs import InputError
from mlaudit.inputs.history import RunHistory, check_size, make_history, to_float

FILE_NAME = "metrics.csv"
HPARAMS = "hparams.yaml"


def read_metrics_csv(path: Path, rel: str) -> RunHistory | None:
    """Parse a CSVLogger file; None when the CSV has no `step` column (some other CSV);
    InputError when it is cut off or malformed."""
    check_size(path, rel)
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(rel, f"cannot read metrics CSV: {err}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or "step" not in header:
            return None
        step_col = header.index("step")
        points: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(
                    rel, f"line {reader.line_num}: {len(row)} cells, header has {len(header)} (file cut off?)"
                )
            step = to_float(row[step_col])
            if step is None or step != step:
                continue
            for name, cell in zip(header, row, strict=True):
                if name in ("step", "epoch") or cell == "":
                    continue
                v = to_float(cell)
                if v is None:
                    raise InputError(rel, f"line {reader.line_num}: {name} = {cell[:40]!r} is not a number")
                points[name].append((int(step), v))
    except csv.Error as err:
        raise InputError(rel, f"line {reader.line_num}: malformed CSV: {err}") from None
    return make_history(
        "lightning",
        path=path,
        rel=rel,
        run_dir=path.parent,
        points=points,
        params=read_hparams(path.parent / HPARAMS, rel),
        checkpoint_steps=_checkpoint_steps(path.parent / "checkpoints"),
    )


def read_hparams(path: Path, rel: str) -> Mapping[str, Any]:
    """The run's hparams.yaml as a flat-ish mapping ({} when absent or not a mapping)."""
    if not path.is_file():
        return {}
    from mlaudit.inputs.yaml_lines import read_config_file

    try:
        doc = read_config_file(path, rel.rsplit("/", 1)[0] + "/" + HPARAMS if "/" in rel else HPARAMS)
    except InputError:
        return {}  # hparams are context for the rules, never the history itself
    return dict(doc.data) if isinstance(doc.data, Mapping) else {}


def _checkpoint_steps(folder: Path) -> tuple[int, ...]:
    """Steps of Lightning's default checkpoint names (`epoch=E-step=S.ckpt`)."""
    steps = []
    try:
        for f in folder.glob("*.ckpt"):
            for part in f.stem.split("-"):
                if part.startswith("step=") and part[5:].isdigit():
                    steps.append(int(part[5:]))
    except OSError:
        return ()
    return tuple(sorted(steps))
