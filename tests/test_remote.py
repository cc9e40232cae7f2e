"""Remote scan targets (issue 15): a real S3-compatible server (moto's server mode, started
here on the loopback), the real s3fs client, fake credentials set by the test. Findings must
match a scan of the same files on local disk; safetensors headers are read by ranges."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from fixtures.gen.fleet_corpus import build_registry, safetensors_bytes
from mlaudit.catalog import load_catalog
from mlaudit.cli import main
from mlaudit.engine import ScanAbort, display_prefix, scan
from mlaudit.inputs import remote
from mlaudit.inputs.session import ScanOptions
from mlaudit.model import Report

moto_server = pytest.importorskip("moto.server", reason="moto[server] not installed (the dev extra has it)")
s3fs = pytest.importorskip("s3fs", reason="s3fs not installed (pip install -e '.[remote]')")

BUCKET = "registry"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """(s3fs filesystem, local copy of what was uploaded) with a moto server on 127.0.0.1."""
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_SESSION_TOKEN": "testing"}
    saved = {k: os.environ.get(k) for k in (*env, "AWS_ENDPOINT_URL")}
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(env, AWS_ENDPOINT_URL=f"http://{host}:{port}")
    try:
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        fs.mkdir(BUCKET)
        local = tmp_path_factory.mktemp("s3-copy")
        build_registry(local / "reg", 60, seed=21)
        # one safetensors file far bigger than its header: 4 MB of data, a 20 kB header
        rng = np.random.default_rng(0)
        arrays = {f"layer{i:03d}.weight": rng.standard_normal((64, 64)).astype("float32") for i in range(240)}
        big = safetensors_bytes(arrays, metadata={"note": "x" * 2000})
        (local / "big").mkdir()
        (local / "big" / "model.safetensors").write_bytes(big)
        fs.put(str(local) + "/", f"{BUCKET}/", recursive=True)
        yield fs, local
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def reads(monkeypatch):
    """Every byte s3fs hands over, per key: ranged reads (_cat_file) and downloads (_get_file)."""
    log: dict[str, list[int]] = {}
    cat, get = s3fs.S3FileSystem._cat_file, s3fs.S3FileSystem._get_file

    async def counted_cat(self, path, version_id=None, start=None, end=None):
        data = await cat(self, path, version_id=version_id, start=start, end=end)
        log.setdefault(path.split("://")[-1], []).append(len(data))
        return data

    async def counted_get(self, rpath, lpath, **kw):
        out = await get(self, rpath, lpath, **kw)
        log.setdefault(rpath.split("://")[-1], []).append(os.path.getsize(lpath))
        return out

    monkeypatch.setattr(s3fs.S3FileSystem, "_cat_file", counted_cat)
    monkeypatch.setattr(s3fs.S3FileSystem, "_get_file", counted_get)
    _fresh_clients()  # an s3fs instance binds its sync methods when made: make new ones
    yield log
    _fresh_clients()


def _fresh_clients() -> None:
    remote._FS.clear()
    s3fs.S3FileSystem.clear_instance_cache()


def _options(select: tuple[str, ...] | None = None, **kw) -> ScanOptions:
    codes = tuple(c for c, m in load_catalog().items() if m.status != "preview"
                  and (select is None or c.startswith(select)))
    return ScanOptions(codes=codes, **kw)


def _facts(report: Report, prefix: str) -> list[tuple]:
    """Findings and checkpoint verdicts with the root prefix taken off (a local path or a URI)."""
    def rel(path: str) -> str:
        return "." if path in (prefix.rstrip("/"), ".") else path.removeprefix(prefix)

    findings = sorted((f.code, rel(f.location.path), f.location.pointer, f.message) for f in report.findings)
    verdicts = sorted((rel(a.path), a.details.get("format"), a.details.get("verdict"),
                       a.details.get("tensors")) for a in report.artifacts if a.kind == "checkpoint")
    return [findings, verdicts]


def test_a_bucket_prefix_reports_what_the_same_files_report_on_disk(s3):
    fs, local = s3
    on_disk = scan([local / "reg"], _options(jobs=1))
    remote = scan([f"s3://{BUCKET}/reg"], _options(jobs=1))
    assert _facts(remote, f"s3://{BUCKET}/reg/") == _facts(on_disk, display_prefix(local / "reg"))
    # findings carry the object's URI, and the corpus holds what the comparison is about
    evil = [f for f in remote.findings if "/evil_" in f.location.path and f.code in ("MLS001", "MLS002")]
    assert evil and all(f.location.path.startswith(f"s3://{BUCKET}/reg/model-") for f in evil)
    assert any(f.code == "MLA002" for f in remote.findings)  # broken files stay inconclusive
    assert not (local / "reg" / "CANARY_MUST_NOT_EXIST").exists()


def test_jobs_2_on_a_bucket_gives_the_serial_report(s3):
    serial = scan([f"s3://{BUCKET}/reg"], _options(jobs=1))
    parallel = scan([f"s3://{BUCKET}/reg"], _options(jobs=2))
    assert _facts(parallel, "") == _facts(serial, "")


def test_safetensors_headers_are_read_by_ranges_within_64k_of_the_header(s3, reads):
    fs, local = s3
    size = (local / "big" / "model.safetensors").stat().st_size
    header = 8 + int.from_bytes((local / "big" / "model.safetensors").read_bytes()[:8], "little")
    assert size > header + 1_000_000
    report = scan([f"s3://{BUCKET}/big"], _options(select=("MLS", "MLA"), jobs=1))
    key = f"{BUCKET}/big/model.safetensors"
    fetched = sum(reads[key])
    assert header < fetched <= header + 64 * 1024, (fetched, header, size)
    (art,) = [a for a in report.artifacts if a.kind == "checkpoint"]
    assert art.details["remote"]["bytes_read"] == fetched and not art.details["remote"]["whole_download"]
    assert art.details["tensors"] == 240 and art.details["verdict"] == "clean"


def test_every_safetensors_file_of_the_registry_stays_within_the_bound(s3, reads):
    fs, local = s3
    scan([f"s3://{BUCKET}/reg"], _options(select=("MLS", "MLA"), jobs=1))
    checked = 0
    for path in (local / "reg").rglob("*.safetensors"):
        data = path.read_bytes()
        header = 8 + int.from_bytes(data[:8], "little")
        if len(data) < 10 or header > len(data):
            continue  # the broken ones: their length field is garbage
        key = f"{BUCKET}/{path.relative_to(local).as_posix()}"
        assert sum(reads[key]) <= header + 64 * 1024, key
        checked += 1
    assert checked >= 10


def test_torch_zips_are_read_in_part_and_pickles_whole(s3, reads):
    fs, local = s3
    report = scan([f"s3://{BUCKET}/reg"], _options(select=("MLS", "MLA"), jobs=1))
    by_name = {Path(a.path).name: a.details for a in report.artifacts if a.kind == "checkpoint"}
    zips = [n for n, d in by_name.items() if d.get("format") == "torch-zip"]
    pickles = [n for n, d in by_name.items() if d.get("format") in ("pickle", "torch-legacy")]
    assert zips and pickles
    for name in zips:
        assert not by_name[name]["remote"]["whole_download"]
        assert by_name[name]["remote"]["requests"] <= 3  # end record, directory, one batch
    for name in pickles:  # their reader reads every byte: one download, then the local reader
        assert by_name[name]["remote"]["whole_download"]


def test_statistics_rules_download_the_whole_file(s3, reads):
    report = scan([f"s3://{BUCKET}/big"], _options(select=("MLC", "MLG", "MLS"), jobs=1))
    assert any(a.kind == "checkpoint-stats" for a in report.artifacts)
    size = fs_size = s3[0].size(f"{BUCKET}/big/model.safetensors")
    assert sum(reads[f"{BUCKET}/big/model.safetensors"]) >= size == fs_size


def test_cached_rerun_reads_no_checkpoint_and_a_changed_object_is_rescanned(s3, reads, tmp_path):
    fs, local = s3
    shutil.copytree(local / "big", tmp_path / "src")
    fs.put(str(tmp_path / "src") + "/", f"{BUCKET}/cached/", recursive=True)
    opts = _options(select=("MLS", "MLA"), cache_dir=tmp_path / "cache", jobs=1)
    first = scan([f"s3://{BUCKET}/cached"], opts)
    reads.clear()
    again = scan([f"s3://{BUCKET}/cached"], opts)
    assert again.findings == first.findings
    assert not reads, reads  # ETag from the listing: no object was read
    # the root memo of a bucket is found again (its local mirror is a new folder each run)
    assert len(list((tmp_path / "cache" / "roots").glob("*.memo"))) == 1
    # same size, other bytes: the ETag changes, the entry does not apply
    data = bytearray((tmp_path / "src" / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    fs.pipe(f"{BUCKET}/cached/model.safetensors", bytes(data))
    scan([f"s3://{BUCKET}/cached"], opts)
    assert reads.get(f"{BUCKET}/cached/model.safetensors")


def test_a_single_object_url_is_a_single_file_scan(s3):
    report = scan([f"s3://{BUCKET}/reg/model-000"], _options(select=("MLS",)))
    one = [a for a in report.artifacts if a.kind == "checkpoint"][0]
    single = scan([one.path], _options(select=("MLS",)))
    assert [a.path for a in single.artifacts if a.kind == "checkpoint"] == [one.path]


def test_a_missing_bucket_is_one_line_exit_2(s3, capsys):
    with pytest.raises(ScanAbort, match="no such object or prefix"):
        scan(["s3://no-such-bucket-here/x"], _options(select=("MLS",)))
    assert main(["scan", "s3://no-such-bucket-here/x", "--isolated"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlaudit: error: s3://no-such-bucket-here/x") and err.count("\n") == 1


def test_the_cli_scans_a_bucket_and_names_the_uri(s3, capsys):
    code = main(["scan", f"s3://{BUCKET}/reg/model-000", "--isolated", "--select", "MLS", "--format", "json"])
    assert code == 1  # the evil files fail the gate
    assert f"s3://{BUCKET}/reg/model-000/evil_" in capsys.readouterr().out
