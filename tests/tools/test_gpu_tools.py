"""The GPU run's preparation and its tools, where they can fail without a GPU: tools/copy_references.py copies
exactly the files a reference's imports load (real imports of small checkouts written here, not the
references' code), tools/gpu_check.sh parses, refuses an unknown step and skips its GPU steps without a CUDA
device, and the benchmarks' ``--device cuda`` options are refused with one line where torch sees no GPU.
What they measure on a GPU is the GPU machine's to run (tools/gpu_check.sh; tests/gpu for correctness).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
sys.path.insert(0, str(TOOLS))
from bench_shards import placement  # noqa: E402

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where torch sees no GPU")


def write(root: Path, files: dict[str, str]) -> Path:
    """Create ``files`` (relative path -> text) under ``root``."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def fake_darts(root: Path) -> Path:
    """A checkout shaped like quark0/darts: cnn/model_search.py importing two siblings, and files it does not
    import (a training script, a README, a folder of data)."""
    return write(root, {
        "LICENSE": "licence text\n",
        "README.md": "not copied\n",
        "cnn/model_search.py": "from operations import OPS\nfrom genotypes import PRIMITIVES\n\n\nclass Network:\n"
                               "    pass\n",
        "cnn/operations.py": "OPS = {}\n",
        "cnn/genotypes.py": "PRIMITIVES = []\n",
        "cnn/train_search.py": "import model_search\n",
        "data/notes.txt": "not copied\n",
    })


def fake_autodl(root: Path) -> Path:
    """A checkout shaped like D-X-Y/AutoDL-Projects: the package's __init__ files, the two imported modules and
    what they import, beside modules nobody imports."""
    return write(root, {
        "LICENSE.md": "licence text\n",
        "setup.py": "not copied\n",
        "xautodl/__init__.py": "",
        "xautodl/models/__init__.py": "",
        "xautodl/models/cell_operations.py": "NAS_BENCH_201 = ['none', 'skip_connect']\n",
        "xautodl/models/cell_searchs/__init__.py": "",
        "xautodl/models/cell_searchs/search_model_darts.py": "from ..cell_operations import NAS_BENCH_201\n"
                                                             "from .search_cells import Cell\n\n\n"
                                                             "class TinyNetworkDarts:\n    pass\n",
        "xautodl/models/cell_searchs/search_cells.py": "class Cell:\n    pass\n",
        "xautodl/models/cell_searchs/search_model_gdas.py": "raise ImportError('never imported')\n",
        "xautodl/procedures/__init__.py": "",
    })


def copy_references(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOLS / "copy_references.py"), *args], capture_output=True,
                          text=True, timeout=120)


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_copy_references_copies_exactly_what_the_imports_load_and_the_licences(tmp_path):
    darts, autodl = fake_darts(tmp_path / "darts"), fake_autodl(tmp_path / "autodl")
    dest = tmp_path / "refs"
    (dest / "darts").mkdir(parents=True)
    (dest / "darts" / "stale.py").write_text("left by an earlier copy\n")
    run = copy_references("--darts", str(darts), "--nb201", str(autodl), "--dest", str(dest), "--json")
    assert run.returncode == 0, run.stderr
    assert tree(dest / "darts") == {"LICENSE", "cnn/model_search.py", "cnn/operations.py", "cnn/genotypes.py"}
    assert tree(dest / "autodl") == {
        "LICENSE.md", "xautodl/__init__.py", "xautodl/models/__init__.py", "xautodl/models/cell_operations.py",
        "xautodl/models/cell_searchs/__init__.py", "xautodl/models/cell_searchs/search_model_darts.py",
        "xautodl/models/cell_searchs/search_cells.py"}
    assert tree(dest) == {f"darts/{f}" for f in tree(dest / "darts")} | {f"autodl/{f}" for f in tree(dest / "autodl")}
    shown = json.loads(run.stdout)
    assert shown["bytes"] == sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    # the copies import as the checkouts do: bench_reference runs on them
    relisted = copy_references("--list", "nb201", str(dest / "autodl"))
    assert relisted.returncode == 0 and len(json.loads(relisted.stdout)) == 6, relisted.stderr


def test_copy_references_bad_input_is_one_line_and_writes_nothing(tmp_path):
    dest = tmp_path / "refs"
    run = copy_references("--darts", str(tmp_path / "missing"), "--dest", str(dest))
    assert run.returncode == 2 and run.stderr.strip() == f"error: --darts '{tmp_path / 'missing'}': not a folder"
    broken = write(tmp_path / "broken", {"cnn/operations.py": "OPS = {}\n"})  # no model_search.py
    run = copy_references("--darts", str(fake_darts(tmp_path / "darts")), "--nb201", str(broken), "--dest", str(dest))
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert run.stderr.startswith("error: importing the nb201 reference from") and "xautodl" in run.stderr
    assert not dest.exists()  # the good darts checkout is not copied either


def test_gpu_scripts_parse_and_an_unknown_step_is_refused(tmp_path):
    for script in ("gpu_check.sh", "gpu_wheels.sh"):
        assert subprocess.run(["bash", "-n", str(TOOLS / script)]).returncode == 0, script
    figures = tmp_path / "out" / "figures.txt"
    run = subprocess.run(["bash", str(TOOLS / "gpu_check.sh"), str(figures), "population", "bogus"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.strip().startswith("error: step 'bogus': not one of reference")
    assert not figures.parent.exists()


@NO_CUDA
@pytest.mark.skipif((ROOT / ".whl").is_dir(), reason="a .whl/ folder here would be installed by the script")
def test_gpu_check_skips_its_gpu_steps_without_a_cuda_device(tmp_path):
    figures = tmp_path / "figures.txt"
    env = {**os.environ, "PY": sys.executable, "GPU_CHECK_WORK": str(tmp_path / "work"),
           "GPU_CHECK_SITE": str(tmp_path / "site")}
    run = subprocess.run(["bash", str(TOOLS / "gpu_check.sh"), str(figures), "reference", "population", "shards",
                          "build", "tier"], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    text = figures.read_text()
    assert "torch sees no CUDA device: the GPU steps" in text and "== done in" in text
    assert "cuda False 0" in text and "== 1." not in text and "== GPU test tier" not in text


@NO_CUDA
@pytest.mark.parametrize("tool, args", [
    ("bench_reference.py", ["--darts", str(ROOT), "--device", "cuda"]),
    ("bench_shards.py", ["--device", "cuda"]),
])
def test_device_cuda_without_a_gpu_is_refused(tool, args):
    run = subprocess.run([sys.executable, str(TOOLS / tool), *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.strip().splitlines()[-1].endswith(
        "error: --device cuda: torch sees no CUDA device here"), run.stderr


def test_bench_reference_refuses_a_batch_below_one():
    run = subprocess.run([sys.executable, str(TOOLS / "bench_reference.py"), "--darts", str(ROOT), "--batch", "0"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.strip().splitlines()[-1].endswith("error: --batch 0: must be at least 1")


def test_shards_get_a_gpu_each_over_nccl_or_share_them_over_gloo():
    assert placement(2, "cpu", 0) == (0.0, None)  # CPU shards: gloo, the search's default
    assert placement(1, "cuda", 1) == (1.0, None)
    assert placement(2, "cuda", 2) == (1.0, None)  # NCCL, one GPU per shard, as a search runs
    assert placement(2, "cuda", 1) == (0.5, "gloo")  # NCCL refuses two ranks on one GPU
    assert placement(4, "cuda", 2) == (0.5, "gloo")
