"""A real S3-compatible server for the storage tests: moto's server mode on 127.0.0.1, a free port.

The fixture points this process and every CLI subprocess it starts at that server through the standard
variables (``AWS_ENDPOINT_URL``, dummy credentials, a region, no instance metadata, no ~/.aws files), keeps
working copies in a folder of its own (``RAYNAS_REMOTE_CACHE``), and gives the variables back afterwards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

BUCKET = "raynas-test"


@dataclass
class S3Server:
    """The running server: its endpoint, a bucket in it, and where working copies go."""

    endpoint: str
    bucket: str
    cache: Path

    def uri(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

    def files(self, prefix: str = "") -> dict[str, int]:
        """Key (below the bucket) -> size of every object under ``prefix``, listed through pyarrow."""
        from pyarrow import fs as pafs

        filesystem, path = pafs.FileSystem.from_uri(self.uri(prefix) if prefix else self.uri())
        infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
        return {info.path.removeprefix(f"{self.bucket}/"): info.size for info in infos
                if info.type == pafs.FileType.File}


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server on loopback with one bucket; the environment points at it while the module runs."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    home = tmp_path_factory.mktemp("aws")
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(home / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
           "RAYNAS_REMOTE_CACHE": str(tmp_path_factory.mktemp("remote-cache"))}
    saved = {name: os.environ.get(name) for name in [*env, "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"]}
    os.environ.pop("AWS_ENDPOINT_URL_S3", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(env)
    try:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        yield S3Server(endpoint, BUCKET, Path(env["RAYNAS_REMOTE_CACHE"]))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()
