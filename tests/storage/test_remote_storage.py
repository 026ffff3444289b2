"""raynas.remote against a real S3-compatible server (moto's server mode on loopback, tests/storage/conftest.py):
URIs and working copies, uploads and downloads of changed files only, and the one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from raynas.errors import ConfigError, StorageError
from raynas.folder_lock import LOCK_FILE, folder_lock
from raynas.remote import (MANIFEST, Remote, WorkingCopy, display, fetch, location_of, new_experiment, parse,
                           publish, sync_up, tune_location)

ALLOWED = "expected s3://BUCKET/PREFIX or gs://BUCKET/PREFIX"


@pytest.mark.parametrize("text, problem", [
    ("hdfs://host/x", "storage scheme 'hdfs://' is not supported"),
    ("gcs://bucket/x", "storage scheme 'gcs://' is not supported"),
    ("s3://", "no bucket"),
    ("s3://Bucket/x", "'Bucket' is not a bucket name"),
    ("s3://bk/x", "'bk' is not a bucket name"),
    ("s3://bucket/a//b", "'' is not usable as a folder of the prefix"),
    ("s3://bucket/a/../b", "'..' is not usable as a folder of the prefix"),
    ("s3://bucket/x?endpoint_override=h", "no '?' or '#' in a storage URI"),
    ("./runs", "not a URI"),
])
def test_a_malformed_or_unsupported_uri_is_one_line_naming_option_and_value(text, problem):
    with pytest.raises(ConfigError) as err:
        parse(text, "--out")
    message = str(err.value)
    assert message.startswith(f"--out = {text!r}: ") and problem in message, message
    assert "\n" not in message and ("s3://BUCKET/PREFIX or gs://BUCKET/PREFIX" in message)


def test_a_uri_maps_to_a_working_copy_and_back(tmp_path, monkeypatch):
    monkeypatch.setenv("RAYNAS_REMOTE_CACHE", str(tmp_path / "cache"))
    remote = parse("s3://my-bucket/team/runs/", "--out").child("quickstart")
    assert remote == Remote("s3", "my-bucket", "team/runs/quickstart")
    assert remote.uri == "s3://my-bucket/team/runs/quickstart" and remote.fs_path == "my-bucket/team/runs/quickstart"
    copy = remote.working_copy()
    assert copy == tmp_path / "cache" / "s3" / "my-bucket" / "team" / "runs" / "quickstart"
    assert location_of(copy) == remote and display(copy) == remote.uri
    assert tune_location(copy, "tune") == "s3://my-bucket/team/runs/quickstart/tune"
    assert display(copy / "plots") == "s3://my-bucket/team/runs/quickstart/plots"
    gcs = parse("gs://my_bucket.data/x", "--out")
    assert location_of(gcs.working_copy()) == gcs and gcs.uri == "gs://my_bucket.data/x"
    assert location_of(tmp_path / "elsewhere") is None and display(tmp_path / "x") == str(tmp_path / "x")
    assert tune_location(tmp_path / "x", "tune") == (tmp_path / "x" / "tune").resolve()
    assert sync_up(tmp_path) == 0  # an ordinary folder: nothing to upload


def _folder(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_upload_then_download_elsewhere_gives_the_same_files_and_times(s3, tmp_path, monkeypatch):
    remote = parse(s3.uri("roundtrip"), "--out")
    here = WorkingCopy(remote)
    _write(here.directory / "config.yaml", b"name: x\n")
    _write(here.directory / "tables" / "parts" / "epochs" / "t_00000" / "00001.parquet", b"part")
    _write(here.directory / "tables" / "epochs.parquet", b"table" * 1000)
    _write(here.directory / LOCK_FILE, b"")  # the driver's lock, the temporary files of atomic writes: local
    _write(here.directory / "tables" / ".epochs.parquet.0123456789ab.tmp", b"half")
    assert here.upload(settle=True) == 3
    assert set(s3.files("roundtrip")) == {"roundtrip/config.yaml", "roundtrip/tables/epochs.parquet",
                                          "roundtrip/tables/parts/epochs/t_00000/00001.parquet"}
    assert here.upload(settle=True) == 0  # nothing changed since

    monkeypatch.setenv("RAYNAS_REMOTE_CACHE", str(tmp_path / "other-machine"))
    there = WorkingCopy(remote)
    assert there.directory != here.directory
    assert there.download() == 3
    expected = {rel: data for rel, data in _folder(here.directory).items()
                if rel not in (LOCK_FILE, MANIFEST) and not rel.endswith(".tmp")}
    assert {rel: data for rel, data in _folder(there.directory).items() if rel != MANIFEST} == expected
    for rel, (size, mtime_ns) in there.remote_files().items():  # each file has its object's time
        assert (there.directory / rel).stat().st_mtime_ns == mtime_ns and size == len(expected[rel])
    assert WorkingCopy(remote).download() == 0  # the manifest: nothing changed there


def test_only_changed_files_go_either_way(s3, tmp_path, monkeypatch):
    remote = parse(s3.uri("changes"), "--out")
    first = WorkingCopy(remote)
    _write(first.directory / "a.txt", b"1")
    _write(first.directory / "b.txt", b"1")
    first.upload(settle=True)
    monkeypatch.setenv("RAYNAS_REMOTE_CACHE", str(tmp_path / "second"))
    second = WorkingCopy(remote)
    assert second.download() == 2
    _write(second.directory / "a.txt", b"22")  # changed there ...
    assert second.upload(settle=True) == 1
    monkeypatch.setenv("RAYNAS_REMOTE_CACHE", str(first.directory.parents[2]))
    first = WorkingCopy(remote)
    _write(first.directory / "b.txt", b"333")  # ... and, not yet uploaded, here
    assert first.download() == 1  # a.txt: changed there; b.txt: unchanged there, so the newer one here stays
    assert (first.directory / "a.txt").read_bytes() == b"22" and (first.directory / "b.txt").read_bytes() == b"333"
    assert first.upload() == 1 and s3.files("changes")["changes/b.txt"] == 3


def test_fetch_leaves_a_working_copy_that_a_driver_holds_as_it_is(s3):
    remote = parse(s3.uri("held", "exp"), "--out")
    copy = WorkingCopy(remote)
    _write(copy.directory / "config.yaml", b"name: exp\n")
    copy.upload(settle=True)
    other = WorkingCopy(remote)
    _write(other.directory / "config.yaml", b"name: exp\n# newer, not yet uploaded by the driver\n")
    with folder_lock(copy.directory, "raynas search"):  # a driver on this machine: its copy is ahead
        assert fetch(remote.uri, "DIRECTORY") == copy.directory
        assert b"newer" in (copy.directory / "config.yaml").read_bytes()


def test_publish_uploads_what_a_command_wrote_into_the_working_copy(s3, tmp_path):
    remote = parse(s3.uri("published"), "--out")
    copy = WorkingCopy(remote)
    _write(copy.directory / "report.md", b"# report")
    _write(copy.directory / "report_files" / "curves.png", b"png")
    _write(tmp_path / "elsewhere.png", b"png")
    named = publish(copy.directory, [copy.directory / "report.md", copy.directory / "report_files",
                                     tmp_path / "elsewhere.png"])
    assert named == [f"{remote.uri}/report.md", f"{remote.uri}/report_files", str(tmp_path / "elsewhere.png")]
    assert set(s3.files("published")) == {"published/report.md", "published/report_files/curves.png"}


def test_a_new_experiment_is_refused_where_one_exists_or_a_working_copy_is_left(s3):
    remote = parse(s3.uri("new"), "--out").child("exp")
    copy = WorkingCopy(remote)
    _write(copy.directory / "config.yaml", b"x")
    with pytest.raises(ConfigError, match="a working copy of 's3://raynas-test/new/exp' from an earlier run is left"):
        new_experiment(s3.uri("new"), "exp")
    copy.upload()
    with pytest.raises(ConfigError, match="experiment folder 's3://raynas-test/new/exp' already exists"):
        new_experiment(s3.uri("new"), "exp")
    assert new_experiment(s3.uri("new"), "other") == remote.working_copy().parent / "other"


def test_storage_errors_are_one_line(s3, monkeypatch):
    with pytest.raises(StorageError) as err:
        fetch("s3://no-such-bucket/x", "DIRECTORY")
    assert str(err.value) == ("DIRECTORY = 's3://no-such-bucket/x': bucket 'no-such-bucket' does not exist (or "
                              "these credentials cannot see it); create it first: raynas creates no buckets")
    with pytest.raises(ConfigError, match="nothing is stored there"):
        fetch(s3.uri("nothing-here"), "DIRECTORY")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nobody listens on the discard port
    with pytest.raises(StorageError) as err:
        fetch(s3.uri("x"), "DIRECTORY")
    assert str(err.value).startswith(f"DIRECTORY = '{s3.uri('x')}': cannot reach bucket") and "\n" not in str(err.value)


def test_the_s3_specific_endpoint_variable_is_honoured(s3, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint)
    copy = WorkingCopy(parse(s3.uri("specific"), "--out"))
    _write(copy.directory / "x.txt", b"x")
    assert copy.upload() == 1 and "specific/x.txt" in s3.files("specific")
