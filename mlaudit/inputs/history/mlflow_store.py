"""MLflow's local file store: `mlruns/<experiment>/<run>/{meta.yaml, metrics/, params/}`.

Each metric file holds lines `timestamp value step`; each param file one value. The format is
read directly (importing mlflow itself costs seconds and is not a dependency of a scan).
Metric names may contain "/" (nested files under metrics/).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from mlaudit.inputs import InputError
from mlaudit.inputs.history import MAX_BYTES, RunHistory, make_history, to_float

META = "meta.yaml"
MAX_PARAM_BYTES = 64 * 1024


def is_run_meta(rel: str) -> bool:
    """Whether a root-relative path is a run's meta.yaml inside an mlruns store."""
    parts = rel.split("/")
    return len(parts) >= 4 and parts[-1] == META and parts[-4] == "mlruns"


def read_mlflow_run(meta_path: Path, rel: str) -> RunHistory:
    """Read one run folder (the one holding `meta_path`); InputError on a malformed metric file."""
    run_dir = meta_path.parent
    metrics_dir = run_dir / "metrics"
    points: dict[str, list[tuple[int, float]]] = defaultdict(list)
    total = 0
    files = sorted(p for p in metrics_dir.rglob("*") if p.is_file()) if metrics_dir.is_dir() else []
    for f in files:
        name = f.relative_to(metrics_dir).as_posix()
        frel = rel.rsplit("/", 1)[0] + "/metrics/" + name
        try:
            total += f.stat().st_size
            if total > MAX_BYTES:
                raise InputError(
                    frel, f"run metrics over the {MAX_BYTES // 2**20} MiB read limit; not checked"
                )
            text = f.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(frel, f"cannot read MLflow metric file: {err}") from None
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            cells = line.split()
            value = to_float(cells[1]) if len(cells) == 3 else None
            step = to_float(cells[2]) if len(cells) == 3 else None
            if value is None or step is None or step != step or step != int(step):
                raise InputError(
                    frel, f"line {lineno}: expected 'timestamp value step', got {line[:60]!r} (file cut off?)"
                )
            points[name].append((int(step), value))
    return make_history(
        "mlflow",
        path=meta_path,
        rel=rel,
        run_dir=run_dir,
        points=points,
        params=_params(run_dir / "params"),
    )


def _params(folder: Path) -> dict[str, Any]:
    """Logged params as strings (MLflow stores every param as text)."""
    out: dict[str, Any] = {}
    if not folder.is_dir():
        return out
    for f in sorted(folder.rglob("*")):
        try:
            if f.is_file() and f.stat().st_size <= MAX_PARAM_BYTES:
                out[f.relative_to(folder).as_posix()] = f.read_text(
                    encoding="utf-8", errors="replace"
                ).strip()
        except OSError:
            continue
    return out
