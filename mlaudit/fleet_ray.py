"""`--executor ray`: checkpoint work sharded across the workers of a Ray cluster (issue 15).

The unit of work is the same as for `--jobs` (mlaudit.fleet): load one checkpoint's inputs
into a FileResult. The driver puts the scan state once into Ray's object store (root, file
list, options; for a remote target, the objects its mirror stands for), cuts the files into
small batches and submits one task per batch; results are taken as tasks finish (`ray.wait`),
and the progress display advances as they arrive. The report does not depend on which worker
read what: the driver applies results in file order, as for `--jobs`.

A worker that dies (killed, out of memory, its node lost) fails only its running task: Ray
retries that task on another worker (`max_retries`). Should the retries run out, the driver
reads those files itself, so no file is ever lost, and a note says so.

Workers must see the same paths as the driver: a local cluster (the default: `ray.init` with
one CPU per `--jobs`), or nodes that share the filesystem; for a remote target the driver's
mirror of small files (configs, READMEs) is such a path. mlaudit must be installed on every
node (the `mlaudit[ray]` extra pulls Ray itself).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from mlaudit.catalog import load_catalog
from mlaudit.inputs import remote
from mlaudit.inputs.repo import RepoFile
from mlaudit.inputs.session import ScanOptions, ScanSession
from mlaudit.params import RuleParams

# (session, kinds, file) -> a picklable result: mlaudit.fleet's per-file loader, passed in (by
# reference: Ray workers import it) so that this module and mlaudit.fleet do not import each other.
Load = Callable[[ScanSession, Sequence[str], RepoFile], Any]
# Files per task: small enough that a dead worker costs little and the load balances, large
# enough that task overhead (~ms) stays below the work.
BATCH = 8
MAX_RETRIES = 3


class RayUnavailable(Exception):
    """Ray is not installed or the cluster cannot be reached (one line, exit 2)."""


def _params(options: ScanOptions, code: str) -> RuleParams:
    return RuleParams.build(load_catalog()[code], options.params)


def _scan_batch(state: tuple[Any, ...], indices: Sequence[int], load: Load) -> list[tuple[int, Any]]:
    """Run in a Ray worker: load the prefetch kinds of each file of `indices`."""
    root, files, options, single, kinds, objects = state
    remote.adopt(objects)
    session = ScanSession(root, files, options, single, rule_params=lambda code: _params(options, code))
    return [(i, load(session, kinds, files[i])) for i in indices]


def connect(address: str | None, cpus: int) -> bool:
    """Attach to the cluster at `address`, or start a local one with `cpus` CPUs; True when
    this call started Ray (the caller shuts it down). Raises RayUnavailable."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--executor ray needs Ray: pip install 'mlaudit[ray]'") from None
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    except Exception as err:  # Ray's own connection errors
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        where = f" at {address}" if address else ""
        raise RayUnavailable(f"--executor ray: cannot reach the cluster{where}: {first}") from None
    return True


def map_files(session: ScanSession, kinds: tuple[str, ...], todo: Sequence[int],
              address: str | None, cpus: int, load: Load) -> Iterator[tuple[int, Any]]:
    """(index, result) for every file of `todo`, as Ray tasks finish (any order)."""
    import ray

    started = connect(address, cpus)
    try:
        state = ray.put((session.root, session.files, session.options, session.single_file, kinds,
                         remote.objects_of(session.files)))
        task = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(_scan_batch)
        # biggest files first so that workers finish together
        order = sorted(todo, key=lambda i: -session.files[i].size)
        pending = {task.remote(state, order[k:k + BATCH], load): order[k:k + BATCH]
                   for k in range(0, len(order), BATCH)}
        lost: list[int] = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                batch = pending.pop(ref)
                try:
                    yield from ray.get(ref)
                except (ray.exceptions.RayError, OSError):
                    lost.extend(batch)  # retries ran out: read here, never dropped
        if lost:
            session.notes.append(f"{len(lost)} file(s) read by the driver after Ray workers failed "
                                 f"{MAX_RETRIES + 1} times")
            for i in lost:
                yield i, load(session, kinds, session.files[i])
    finally:
        if started:
            ray.shutdown()


def default_cpus(jobs: int | None) -> int:
    """CPUs of a local cluster: --jobs, else the cores this process may use."""
    if jobs:
        return jobs
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
