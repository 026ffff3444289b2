"""Shared test set-up: one bounded, loopback-only Ray fixture and single-threaded torch.

Environment variables are set before anything imports Ray: a local Ray instance then listens on 127.0.0.1
only, never writes an auth token into the home folder, sends no usage statistics, and runs its workers at
the default niceness.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
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


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory: pytest.TempPathFactory):
    """A local Ray instance bounded to 2 CPUs, on loopback, with its temp folder under pytest's tmp."""
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
