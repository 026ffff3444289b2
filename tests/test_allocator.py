"""The worker processes' memory allocator (``ray.allocator``): what it sets, that Ray's workers really run on
it, and that a supernet step computes the same on either allocator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from raynas.allocator import MIMALLOC_OPTIONS, process_allocator, worker_env
from raynas.config import config_from_dict
from raynas.errors import ConfigError

# One supernet training step on fixed inputs; prints the allocator, the loss and every gradient's sum.
STEP_SCRIPT = textwrap.dedent("""
    import json
    import torch
    from raynas.allocator import process_allocator
    from raynas.spaces import get_space

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = get_space("darts").build_supernet(num_classes=10, in_channels=3, channels=4, layers=3)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    grads = [float(p.grad.double().sum()) for p in model.parameters() if p.grad is not None]
    print(json.dumps({"allocator": process_allocator(), "loss": float(loss), "grads": grads}))
""")

# Starts raynas' local Ray on each allocator in turn and asks a worker which allocator it runs on.
RAY_SCRIPT = textwrap.dedent("""
    import json
    import ray
    from raynas.allocator import process_allocator
    from raynas.config.schema import RayConfig
    from raynas.experiment import start_ray

    seen = {}
    for allocator in ("mimalloc", "system"):
        start_ray(RayConfig(num_cpus=1, allocator=allocator))
        seen[allocator] = ray.get(ray.remote(process_allocator).remote())
        ray.shutdown()
    print(json.dumps(seen))
""")


def run_python(script: str, env_update: dict[str, str]) -> dict:
    """Run ``script`` in a fresh interpreter with ``env_update`` added; the JSON its last line prints.

    Ray's temp folder is a short one of its own (its socket paths must stay under 108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="rna-", dir="/tmp", ignore_cleanup_errors=True) as ray_temp:
        env = {**os.environ, **env_update, "RAYNAS_RAY_TEMP_DIR": ray_temp}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_mimalloc_env_preloads_the_installed_library():
    env = worker_env("mimalloc")
    library = Path(env["LD_PRELOAD"])
    assert library.name == "libmimalloc.so" and library.is_file()
    for key, value in MIMALLOC_OPTIONS.items():
        assert env[key] == value
    assert env["MIMALLOC_PURGE_DELAY"] == "-1"  # pages kept for reuse: the speed of the step depends on it


def test_system_allocator_sets_nothing():
    assert worker_env("system") == {}


def test_unknown_allocator_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match=r"ray\.allocator: 'jemalloc' is not an allocator; valid: mimalloc, system"):
        worker_env("jemalloc")
    with pytest.raises(ConfigError, match=r"allocator.*jemalloc.*mimalloc"):
        config_from_dict({"ray": {"allocator": "jemalloc"}})


def test_config_default_is_mimalloc():
    assert config_from_dict({}).ray.allocator == "mimalloc"


def test_process_allocator_reads_the_memory_map(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f01 r-xp 0 0:0 0 /venv/site-packages/cmeel.prefix/lib/libmimalloc.so.3.4\n")
    assert process_allocator(str(maps)) == "mimalloc"
    maps.write_text("7f00-7f01 r-xp 0 0:0 0 /usr/lib/x86_64-linux-gnu/libc.so.6\n")
    assert process_allocator(str(maps)) == "system"
    assert process_allocator(str(tmp_path / "missing")) == "system"
    assert process_allocator() == "system"  # pytest itself runs on the system's malloc


def test_supernet_step_is_the_same_on_either_allocator():
    on_mimalloc = run_python(STEP_SCRIPT, worker_env("mimalloc"))
    on_system = run_python(STEP_SCRIPT, worker_env("system"))
    assert (on_mimalloc["allocator"], on_system["allocator"]) == ("mimalloc", "system")
    assert on_mimalloc["loss"] == on_system["loss"]
    assert on_mimalloc["grads"] == on_system["grads"] and len(on_system["grads"]) > 10


def test_ray_workers_run_on_the_configured_allocator():
    assert run_python(RAY_SCRIPT, {}) == {"mimalloc": "mimalloc", "system": "system"}
