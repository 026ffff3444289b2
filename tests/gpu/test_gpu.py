"""The GPU tier: raynas' CUDA paths on a real CUDA device (``pytest -m gpu``; ``tools/gpu_check.sh`` runs it).

Skipped, with that reason, where torch sees no CUDA device; tests that need two devices (shards over NCCL)
say so. What runs here: a search step on the GPU beside the same step on the CPU, checkpoints that move
between the two, a population of trials sharing one GPU by fractions through the real CLI, teacher and
selection-worker actors in GPU bundles, ``raynas train`` on CUDA and the export of its network.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from cli_helpers import LOOPBACK, ROOT, raynas, run_watching_sockets  # noqa: E402

from raynas.config import load_config  # noqa: E402

CUDA_DEVICES = torch.cuda.device_count() if torch.cuda.is_available() else 0
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(CUDA_DEVICES == 0, reason="needs a CUDA device (torch sees none here)")]

SMOKE = ROOT / "search_configs" / "smoke"
TINY = ("data.limit=128", "supernet.channels=4", "supernet.layers=1", "search.epochs=2", "search.batch_size=32")
CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"


def sets(*keys: str) -> list[str]:
    """``--set`` arguments for the CLI."""
    return [arg for key in keys for arg in ("--set", key)]


def test_search_epoch_on_cuda_agrees_with_the_cpu_and_its_state_moves_between_them():
    from raynas.search import Search

    overrides = ["data.limit=64", "search.epochs=1", "search.threads=1", "search.eval_derived=false"]
    searches = {device: Search(load_config(SMOKE / "nb201.yaml", [*overrides, f"search.device={device}"]))
                for device in ("cpu", "cuda")}
    try:
        assert all(p.is_cuda for p in searches["cuda"].model.parameters())
        reports = {device: search.run_epoch() for device, search in searches.items()}
        # Same seed, same batches: the losses agree up to the kernels' float differences.
        assert math.isfinite(reports["cuda"]["train_loss"])
        assert reports["cuda"]["train_loss"] == pytest.approx(reports["cpu"]["train_loss"], rel=2e-2)
        state = searches["cuda"].get_state()  # a CUDA trial's checkpoint resumes on a CPU-only node
        searches["cpu"].set_state(state)
        for key, value in searches["cpu"].model.state_dict().items():
            assert value.device.type == "cpu" and torch.equal(value, state["model"][key].cpu()), key
    finally:
        for search in searches.values():
            search.close()


def test_population_shares_one_gpu_by_fractions(tmp_path):
    # search.device=cuda fails a trial that Ray gave no GPU (CUDA_VISIBLE_DEVICES empty): success means
    # both trials ran on the GPU, two at a time on half a GPU each.
    run = run_watching_sockets("search", str(ROOT / "search_configs" / "quickstart.yaml"), "--out", str(tmp_path),
                               *sets(*TINY, "ray.num_cpus=2", "search.device=cuda", "resources.gpus_per_trial=0.5",
                                     "resources.cpus_per_trial=1"), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    trials = pq.read_table(tmp_path / "quickstart" / "tables" / "trials.parquet").to_pylist()
    assert len(trials) == 2 and {t["status"] for t in trials} == {"TERMINATED"}
    assert run.listening <= LOOPBACK


def test_teacher_actors_run_on_their_gpus(ray_local):
    from raynas.actors.teacher import TeacherGroup

    cfg = load_config(SMOKE / "sd.yaml", ["resources.gpus_per_teacher=0.25", "resources.cpus_per_teacher=0.5"])
    group = TeacherGroup(cfg, num_classes=10, in_channels=1, start_timeout_s=120)
    try:
        devices = ray_local.get([actor.device.remote() for actor in group._actors], timeout=120)
        assert [d.split(":")[0] for d in devices] == ["cuda"], devices
        assert group.held_tags() == [[]]
    finally:
        group.close()


def test_selection_workers_and_teachers_in_gpu_bundles_through_the_cli(tmp_path):
    run = run_watching_sockets("search", str(SMOKE / "perturbation.yaml"), "--out", str(tmp_path),
                               *sets("ray.num_cpus=4", "search.device=cuda", "selection.workers=2",
                                     "resources.gpus_per_trial=0.25", "resources.gpus_per_selection_worker=0.25",
                                     "resources.cpus_per_selection_worker=1"), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    decisions = pq.read_table(tmp_path / "smoke-perturbation" / "tables" / "decisions.parquet")
    assert sum(d == "keep" for d in decisions.column("decision").to_pylist()) == 6  # every NB201 edge decided


@pytest.mark.skipif(CUDA_DEVICES < 2, reason="needs 2 CUDA devices: NCCL puts one shard on each")
def test_shards_all_reduce_over_nccl(tmp_path):
    run = run_watching_sockets("search", str(ROOT / "search_configs" / "shards_nb201.yaml"), "--out", str(tmp_path),
                               *sets(*TINY, "ray.num_cpus=3", "search.device=cuda", "resources.gpus_per_shard=1"),
                               timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    epochs = pq.read_table(tmp_path / "shards-nb201" / "tables" / "epochs.parquet")
    assert epochs.column("epoch").to_pylist() == [1, 2]


def test_train_on_cuda_and_export_the_network(tmp_path):
    result = raynas("train", CONV, "--epochs", "2", "--set", "channels=8", "--set", "layers=1", "--set",
                    "batch_size=32", "--set", "device=cuda", "--gpus-per-trial", "1", "--out", str(tmp_path),
                    "--name", "run", "--num-cpus", "2", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = pq.read_table(tmp_path / "run" / "tables" / "evaluations.parquet").to_pylist()
    assert len(rows) == 1 and rows[0]["status"] == "TERMINATED" and rows[0]["epochs_done"] == 2
    assert rows[0]["epoch_test_acc"][-1] > 0.1  # learned something on the GPU
    # The CUDA-trained checkpoint exports (on the CPU) and both formats reproduce its outputs.
    exported = raynas("export", str(tmp_path / "run"), "--format", "pt2,onnx", "--out", str(tmp_path / "export"),
                      timeout=600)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert sorted(p.suffix for p in (tmp_path / "export").iterdir() if p.suffix in (".pt2", ".onnx")) == \
        [".onnx", ".pt2"]
