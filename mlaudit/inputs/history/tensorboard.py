"""TensorBoard event files (`events.out.tfevents.*`): scalar summaries per tag.

The records are framed as TFRecords (8-byte length, 4-byte length CRC, payload, 4-byte payload
CRC); each payload is an `Event` protobuf decoded with TensorBoard's own generated message class
(`tensorboard.compat.proto.event_pb2`, protobuf only). TensorBoard's loader module is not used:
importing it costs about three times as much (it pulls TensorBoard's TensorFlow stub), and its
pure-Python CRC32C would make a 10,000-step file take seconds. CRCs are therefore not verified;
a record cut short or a payload that is no Event is an error, which covers truncated files.

All event files in one folder are one run (TensorBoard itself reads a folder as a run).
Requires the `tensorboard` package (the `history` extra); without it, event files are reported
as not checked.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from pathlib import Path

from mlaudit.inputs import InputError
from mlaudit.inputs.history import MAX_BYTES, RunHistory, make_history

MARKER = ".tfevents."
_HEADER = struct.Struct("<QI")


def is_event_file(name: str) -> bool:
    """Whether a file name is a TensorBoard event file."""
    return MARKER in name and name.startswith("events.out")


def run_files(folder: Path) -> list[Path]:
    """The folder's event files in write order (their names carry the creation time)."""
    return sorted(p for p in folder.iterdir() if is_event_file(p.name) and p.is_file())


def read_event_folder(folder: Path, rel: str) -> RunHistory:
    """Scalars of every event file in `folder`; `rel` names the first one (findings point at it)."""
    try:
        from tensorboard.compat.proto import event_pb2
    except ImportError:
        raise InputError(
            rel,
            "TensorBoard event file not checked: the `tensorboard` package is not "
            "installed (pip install 'mlaudit[history]')",
        ) from None
    from google.protobuf.message import DecodeError

    points: dict[str, list[tuple[int, float]]] = defaultdict(list)
    total = 0
    rel_dir = rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""
    for path in run_files(folder):
        frel = rel_dir + path.name
        try:
            size = path.stat().st_size
            total += size
            if total > MAX_BYTES:
                raise InputError(
                    frel, f"event files over the {MAX_BYTES // 2**20} MiB read limit; not checked"
                )
            data = path.read_bytes()
        except OSError as err:
            raise InputError(frel, f"cannot read event file: {err.strerror}") from None
        event = event_pb2.Event()
        pos, end, n = 0, len(data), 0
        while pos < end:
            if end - pos < _HEADER.size:
                raise InputError(frel, f"event file cut off inside record {n} header (byte {pos})")
            length, _crc = _HEADER.unpack_from(data, pos)
            start = pos + _HEADER.size
            if length > end - start - 4:
                raise InputError(
                    frel,
                    f"event file cut off inside record {n} (byte {pos}: "
                    f"{length} bytes announced, {max(end - start - 4, 0)} left)",
                )
            try:
                event.ParseFromString(data[start : start + length])
            except DecodeError:
                raise InputError(frel, f"record {n} (byte {pos}) is not a TensorBoard event") from None
            pos = start + length + 4
            n += 1
            if not event.HasField("summary"):
                continue
            step = event.step
            for value in event.summary.value:
                # simple_value is what torch / Lightning / HF write: the fast path (10k steps x
                # several tags is a Python loop)
                if value.WhichOneof("value") == "simple_value":
                    points[value.tag].append((step, value.simple_value))
                elif (v := _scalar(value)) is not None:
                    points[value.tag].append((step, v))
    return make_history(
        "tensorboard",
        path=folder / Path(rel).name,
        rel=rel,
        run_dir=folder,
        points=points,
    )


def _scalar(value) -> float | None:
    """A summary value as a float: `simple_value` (tf1 / torch writers) or a 0-d float tensor."""
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind == "tensor":
        t = value.tensor
        if t.float_val:
            return float(t.float_val[0])
        if t.double_val:
            return float(t.double_val[0])
        if t.tensor_content and t.dtype in (1, 2) and not t.tensor_shape.dim:  # DT_FLOAT, DT_DOUBLE
            fmt = "<f" if t.dtype == 1 else "<d"
            if len(t.tensor_content) == struct.calcsize(fmt):
                return float(struct.unpack(fmt, t.tensor_content)[0])
    return None
