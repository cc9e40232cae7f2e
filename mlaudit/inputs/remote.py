"""Remote scan targets (`s3://`, `gs://`, `hf://`, any fsspec URL) read through fsspec.

A remote prefix becomes an ordinary scan root: a private local folder mirrors its keys. The
small files the project rules read (configs, READMEs, shard indexes: up to SMALL_FILE_LIMIT)
are downloaded whole into it; checkpoints are not. A checkpoint's RepoFile points at the place
it would have in the mirror, and this module remembers which object it stands for, so that:

- `open_buffer` hands the checkpoint reader a `RangedView` for the formats whose readers touch
  only some bytes (safetensors: the header; zip archives, torch's included: the central
  directory, the local headers, the pickle members and small records; numpy: the header),
  and downloads the whole object (a bounded spool in the mirror) for formats whose reader
  reads every byte anyway (pickles, legacy torch files, joblib, tar/gzip, ONNX protobufs);
- `ensure_local` downloads the whole object before anything reads tensor data (statistics,
  torch.load): those rules need every byte.

The reader code is the same as for a local file, so the verdict is the same: a file is never
"clean" unless every byte a loader would use was read and checked. Findings carry the URI
(the engine's display prefix). Objects are identified for `--cache` by the store's content
identity (S3 ETag, GCS md5/crc32c, the Hub's blob id or LFS sha256), never by a date.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlaudit.inputs.ranged import RangedView
from mlaudit.inputs.repo import DEFAULT_EXCLUDES, RepoFile, classify, is_excluded

_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
# Protocols and the package that provides each (the `remote` extra installs them).
PROTOCOL_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "hf": "huggingface_hub"}
# Non-checkpoint files bigger than this are not fetched (named in a note): the project rules
# read configs and docs, not data dumps that happen to sit beside the weights.
SMALL_FILE_LIMIT = 8 * 1024 * 1024
# Formats (by their first bytes) whose readers touch only part of the file: read by ranges.
_RANGED_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")
# Keys of an fsspec info dict that identify content, most specific first.
_CONTENT_KEYS = ("ETag", "etag", "md5Hash", "crc32c", "blob_id", "sha256", "checksum")


class RemoteError(Exception):
    """The remote target cannot be listed or read (one line, exit 2)."""


def is_remote(target: str | os.PathLike[str]) -> bool:
    """True for a URL with a scheme other than file:// (s3://, gs://, hf://, memory://...)."""
    m = _URL.match(str(target))
    return m is not None and m.group(1).lower() not in ("file", "local")


@dataclass
class RemoteObject:
    """One object of a remote target: its URL, size, content identity and counters."""

    url: str
    size: int
    content_id: str | None
    local: Path  # where it lives in the mirror once downloaded
    bytes_read: int = 0
    requests: int = 0
    whole: bool = False  # downloaded whole (spooled) rather than read by ranges


@dataclass
class RemoteTarget:
    """A listed remote prefix (or object) and its local mirror."""

    url: str
    root: Path
    files: list[RepoFile]
    single: bool
    display_prefix: str
    notes: list[str] = field(default_factory=list)


# Mirror path -> the object it stands for. Module state on purpose: forked `--jobs` workers
# inherit it, and the readers are handed only a path.
_OBJECTS: dict[Path, RemoteObject] = {}
_FS: dict[tuple[int, str], Any] = {}
_LOCK = threading.Lock()


def _protocol(url: str) -> str:
    m = _URL.match(url)
    if m is None:
        raise RemoteError(f"{url}: not a URL")
    return m.group(1).lower()


def _filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path within it) for `url`, one filesystem per process and protocol
    (an s3fs client made before a fork must not be used after it)."""
    protocol = _protocol(url)
    key = (os.getpid(), protocol)
    try:
        import fsspec
    except ImportError:
        raise RemoteError(f"{url}: remote paths need fsspec: pip install 'mlaudit[remote]'") from None
    with _LOCK:
        fs = _FS.get(key)
        if fs is None:
            try:
                fs = fsspec.filesystem(protocol, **_storage_options(protocol))
            except (ImportError, ValueError) as err:
                package = PROTOCOL_PACKAGES.get(protocol)
                hint = f": pip install 'mlaudit[remote]' (needs {package})" if package else f" ({err})"
                raise RemoteError(f"{url}: no filesystem for {protocol}://{hint}") from None
            _FS[key] = fs
    return fs, fs._strip_protocol(url)


def _storage_options(protocol: str) -> dict[str, Any]:
    """Options from the environment that the stores' own clients do not read themselves."""
    if protocol in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        opts: dict[str, Any] = {}
        if endpoint:  # an S3-compatible store (MinIO, Ceph, a local test server)
            opts["client_kwargs"] = {"endpoint_url": endpoint}
        if os.environ.get("MLAUDIT_S3_ANON") == "1":
            opts["anon"] = True
        return opts
    return {}


def content_id(info: Mapping[str, Any]) -> str | None:
    """The store's identity of an object's content, or None when it gives none."""
    for key in _CONTENT_KEYS:
        value = info.get(key)
        if value:
            return f"{key}:{str(value).strip(chr(34))}"
    lfs = info.get("lfs")
    if isinstance(lfs, Mapping) and lfs.get("sha256"):
        return f"lfs:{lfs['sha256']}"
    return None


def _error(url: str, err: BaseException) -> RemoteError:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return RemoteError(f"{url}: cannot list: {text}")


def open_target(url: str, exclude: Sequence[str] = ()) -> RemoteTarget:
    """List `url` (a prefix or one object), mirror its small files into a private temporary
    folder and register its checkpoints. Raises RemoteError with one line."""
    fs, path = _filesystem(url)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise RemoteError(f"{url}: no such object or prefix") from None
    except Exception as err:  # the stores' own exception types (credentials, network)
        raise _error(url, err) from None
    single = info.get("type") == "file"
    try:
        listing = {path: info} if single else fs.find(path, detail=True)
    except Exception as err:
        raise _error(url, err) from None
    protocol = _protocol(url)
    base = path.rsplit("/", 1)[0] if single else path.rstrip("/")
    import tempfile  # here: only a remote scan needs it (every scan imports this module)

    root = Path(tempfile.mkdtemp(prefix="mlaudit-remote-"))
    # removed by close_target after the scan; this covers a scan that stops on an error
    atexit.register(shutil.rmtree, root, True)
    target = RemoteTarget(url, root, [], single, f"{protocol}://{base}/")
    skipped: list[str] = []
    for key, meta in sorted(listing.items()):
        if meta.get("type", "file") != "file":
            continue
        rel = key[len(base) + 1 :] if key.startswith(base + "/") else key.rsplit("/", 1)[-1]
        if not rel or is_excluded(rel, (*DEFAULT_EXCLUDES, *exclude)):
            continue
        kind = "checkpoint" if single else classify(rel)
        size = int(meta.get("size") or 0)
        local = root / rel
        # shard indexes are small JSON the layout reads as a file: fetched like a config
        if kind != "checkpoint" or rel.endswith(".index.json"):
            if size > SMALL_FILE_LIMIT:
                skipped.append(rel)
                continue
            local.parent.mkdir(parents=True, exist_ok=True)
            try:
                fs.get_file(key, str(local))
            except Exception as err:
                raise _error(f"{protocol}://{key}", err) from None
        _OBJECTS[local] = RemoteObject(f"{protocol}://{key}", size, content_id(meta), local)
        target.files.append(RepoFile(local, rel, kind, size))
    if skipped:
        target.notes.append(f"{len(skipped)} non-checkpoint file(s) over {SMALL_FILE_LIMIT // 2**20} MB "
                            f"not fetched (e.g. {skipped[0]})")
    return target


def close_target(target: RemoteTarget) -> None:
    """Forget the target's objects and remove its mirror (mlaudit's own temporary folder)."""
    for f in target.files:
        _OBJECTS.pop(f.path, None)
    shutil.rmtree(target.root, ignore_errors=True)


def objects_of(files: Sequence[RepoFile]) -> dict[Path, RemoteObject]:
    """The remote objects behind `files` (for workers not forked from this process)."""
    return {f.path: _OBJECTS[f.path] for f in files if f.path in _OBJECTS}


def adopt(objects: Mapping[Path, RemoteObject]) -> None:
    """Register objects listed by another process (a Ray worker gets the driver's)."""
    _OBJECTS.update(objects)


def remote_object(path: Path) -> RemoteObject | None:
    """The remote object a mirror path stands for (None for a local file)."""
    return _OBJECTS.get(path)


def _download(obj: RemoteObject) -> None:
    """The whole object into its mirror path (atomically: a torn download is never read)."""
    fs, path = _filesystem(obj.url)
    obj.local.parent.mkdir(parents=True, exist_ok=True)
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=obj.local.parent, prefix=".part-")
    os.close(fd)
    try:
        fs.get_file(path, tmp)
        got = os.path.getsize(tmp)
        if got != obj.size:
            raise OSError(f"{obj.url}: downloaded {got:,} bytes, listed as {obj.size:,}")
        os.replace(tmp, obj.local)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    obj.bytes_read += obj.size
    obj.requests += 1
    obj.whole = True


def ensure_local(path: Path, siblings: Sequence[str] = ()) -> None:
    """Make a remote checkpoint (and `siblings`, names beside it: shards, external data)
    whole on local disk before tensor data is read. Nothing for local files."""
    for p in (path, *(path.parent / s for s in siblings)):
        obj = _OBJECTS.get(p)
        if obj is not None and not p.exists():
            _download(obj)


def open_buffer(path: Path) -> tuple[Any, RemoteObject] | None:
    """(bytes view, object) for a remote checkpoint not downloaded yet, else None (the caller
    mmaps the local file). A RangedView for formats read in part; after a whole download
    (None returned) for the others."""
    obj = _OBJECTS.get(path)
    if obj is None or path.exists():
        return None
    fs, key = _filesystem(obj.url)

    def fetch(start: int, end: int) -> bytes:
        return bytes(fs.cat_file(key, start=start, end=end))

    def fetch_many(ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        blobs = fs.cat_ranges([key] * len(ranges), [a for a, _ in ranges], [b for _, b in ranges])
        for blob in blobs:
            if isinstance(blob, BaseException):
                raise OSError(f"{obj.url}: ranged read failed: {blob}")
        return [bytes(b) for b in blobs]

    view = RangedView(fetch, obj.size, fetch_many=fetch_many)
    head = view[:16]
    if head.startswith(_RANGED_MAGICS) or (len(head) >= 9 and head[8:9] == b"{"):
        return view, obj
    view.close()
    obj.bytes_read += view.bytes_read
    obj.requests += view.requests
    _download(obj)
    return None


def exists(path: Path) -> bool:
    """A local file, or a remote object the mirror stands in for (a shard an index names)."""
    return path.is_file() or path in _OBJECTS


def size_of(path: Path) -> int:
    """Size of a local file or of the remote object behind a mirror path."""
    obj = _OBJECTS.get(path)
    if obj is not None and not path.exists():
        return obj.size
    return path.stat().st_size
