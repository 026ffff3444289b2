"""Shared test set-up: one bounded, loopback-only Ray fixture and single-threaded torch.

Environment variables are set before anything imports Ray: a local Ray instance then listens on 127.0.0.1
only, authenticates with a token as raynas' own does (from a private token file of this session, never the
home folder's), sends no usage statistics, and runs its workers at the default niceness.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from raynas.ray_auth import ensure_private_token

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
# Token authentication on, as where the product runs (raynas.ray_auth): every Ray a test starts, in this
# process or in a CLI subprocess (which inherits these), refuses clients without the token. The token file
# lives in a private folder of this session, so no test reads or writes ~/.ray/auth_token.
_AUTH_DIR = tempfile.mkdtemp(prefix="raynas-auth-")  # mode 0700
os.environ.pop("RAY_AUTH_TOKEN", None)
os.environ["RAY_AUTH_TOKEN_PATH"] = str(ensure_private_token(Path(_AUTH_DIR, "auth_token")))
os.environ["RAY_AUTH_MODE"] = "token"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
# Ray starts its workers at niceness 15: on a machine busy with anything at the default niceness they get a
# few per cent of a core, and a suite that takes 4 minutes idle takes over 35. Tests run them at the default
# niceness (a fair share of a busy machine); what the tests assert does not depend on it. The CLI
# subprocesses of the e2e tests inherit it.
os.environ.setdefault("RAY_worker_niceness", "0")


def pytest_configure(config: pytest.Config) -> None:
    """Keep torch on one thread: the suite shares two cores with Ray workers."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(1)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove this session's token folder."""
    shutil.rmtree(_AUTH_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory: pytest.TempPathFactory):
    """A local Ray instance bounded to 2 CPUs, on loopback, with its temp folder under pytest's tmp.

    Under pytest-xdist (``make test``) each worker process has its own.
    """
    import ray

    temp_dir = tmp_path_factory.mktemp("ray")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(temp_dir), log_to_driver=False,
             object_store_memory=200 * 1024 * 1024)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def nb201_autoencoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small NB201 cell autoencoder file for E2NAS searches (3,000 cells, 2 epochs, hidden 32: about 2 s)."""
    from raynas.e2nas import pretrain, save

    model, _ = pretrain("nb201", samples=3000, epochs=2, hidden=32, seed=0, prior_samples=10)
    path = tmp_path_factory.mktemp("e2nas") / "nb201-vgae.pt"
    save(model, path)
    return str(path)
