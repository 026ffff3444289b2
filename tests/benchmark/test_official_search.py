"""NB201 searches on CIFAR-10 scored against an official NAS-Bench-201 file, for real: the scored
population in this process on the session's local Ray (in_process.py), bad input through the CLI as a
subprocess, torch training on a small CIFAR-10 written in its official format, and a
NAS-Bench-201 .pth holding all 15,625 arch strings with made-up accuracies (written with nats_bench's own
classes, tests/benchmark/official_format.py), so whatever cell a search derives has its ground truth."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from cli_helpers import raynas  # noqa: E402
from in_process import search_here  # noqa: E402
from official_format import shuffled_archs, write_nb201_pth  # noqa: E402
from test_data_vision import _write_cifar10  # noqa: E402

from raynas.benchmark.cells import unique_cells  # noqa: E402
from raynas.benchmark.lookup import GROUND_TRUTH_COLUMNS  # noqa: E402
from raynas.results import load_table  # noqa: E402

pytest.importorskip("nats_bench")

ARCHS = shuffled_archs(1)
BEST = 4321  # the index of the file's best arch string: 94.37 %, the published best


def accuracy_of(index: int) -> float:
    """The made-up 200-epoch CIFAR-10 test accuracy (percent) of the file's ``index``-th arch string."""
    return 94.37 if index == BEST else 40.0 + (index * 7919 % 5000) / 100


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CIFAR-10 folder (80 training, 16 test images) and the full-space NAS-Bench-201 file (2 epochs per
    made-up training keep it at 24 MB)."""
    root = tmp_path_factory.mktemp("official")
    _write_cifar10(root / "cifar", per_batch=16, n_test=16)
    pth = write_nb201_pth(root / "NAS-Bench-201-v1_1-096897.pth", ARCHS,
                          {i: {"cifar10": [accuracy_of(i)]} for i in range(len(ARCHS))}, epochs=2)
    return {"root": root / "cifar", "pth": pth, "cache": root / "cache"}


def search_config(files: dict[str, Path], **sections: dict) -> dict:
    """A two-trial NB201 search on CIFAR-10 (2 epochs of a C=4, N=1 supernet), scored by the file."""
    config = {"name": "official", "space": "nb201",
              "data": {"name": "cifar10", "root": str(files["root"])},
              "supernet": {"channels": 4, "layers": 1},
              "search": {"epochs": 2, "batch_size": 16, "arch_lr": 0.01},
              "benchmark": {"official": str(files["pth"]), "cache_dir": str(files["cache"])},
              "tune": {"grid": {"search.arch_lr": [0.01, 0.03]}, "metric": "gt_test_acc"},
              "ray": {"num_cpus": 2}}
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values} if isinstance(values, dict) else values
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def expected_columns(arch: str) -> dict[str, float]:
    """The ground truth of ``arch`` computed here from the accuracies written: the arch string's own
    accuracy, its percentile among the unique cells (a cell's accuracy: the mean over its arch strings),
    the regret to 94.37 %."""
    cells = unique_cells()
    per_cell: dict[int, list[float]] = {}
    for index, other in enumerate(ARCHS):
        per_cell.setdefault(cells.cell_id(other), []).append(accuracy_of(index) / 100)
    means = [sum(v) / len(v) for v in per_cell.values()]
    accuracy = accuracy_of(ARCHS.index(arch)) / 100
    return {"gt_test_acc": accuracy, "gt_percentile": 100 * sum(m <= accuracy for m in means) / len(means),
            "gt_regret": 0.9437 - accuracy}


@pytest.fixture(scope="module")
def scored(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, ray_local) -> dict:
    """The scored population, run once in this process (in_process.py: search_here)."""
    out = tmp_path_factory.mktemp("out")
    config = write_config(out / "official.yaml", search_config(files))
    run = search_here(config, out)
    return {"run": run, "dir": out / "official", "config": config}


def test_every_epoch_records_the_official_ground_truth_of_its_derived_cell(scored, files):
    experiment = scored["dir"]
    epochs = load_table(experiment, "epochs").to_pylist()
    genotypes = {(r["trial_id"], r["epoch"]): r["genotype"] for r in load_table(experiment, "genotypes").to_pylist()}
    assert len(epochs) == 4 and set(genotypes) == {(r["trial_id"], r["epoch"]) for r in epochs}
    for row in epochs:
        expected = expected_columns(genotypes[(row["trial_id"], row["epoch"])])
        assert {name: row[name] for name in GROUND_TRUTH_COLUMNS} == pytest.approx(expected)
    assert "gt_acc " in scored["run"].stdout and " (p" in scored["run"].stdout  # the progress line shows it
    resolved = yaml.safe_load((experiment / "config.yaml").read_text())["benchmark"]
    assert resolved == {"score": "on", "table": None, "protocol": None, "official": str(files["pth"]),
                        "cache_dir": str(files["cache"].resolve())}
    assert len(list(files["cache"].glob("official-*.parquet"))) == 1  # read once, cached for the trials


def test_the_population_is_ranked_by_the_official_ground_truth(scored):
    experiment = scored["dir"]
    run = raynas("results", str(experiment), "--format", "json")
    assert run.returncode == 0, run.stderr
    board = json.loads(run.stdout)
    assert len(board) == 2
    ranked = [row["final_gt_test_acc"] for row in board]  # the ranking column: gt_test_acc at the last epoch
    assert ranked == sorted(ranked, reverse=True)
    epochs = load_table(experiment, "epochs").to_pylist()
    for row in board:
        last = max((r for r in epochs if r["trial_id"] == row["trial_id"]), key=lambda r: r["epoch"])
        assert row["final_gt_test_acc"] == last["gt_test_acc"]
        assert row["final_gt_regret"] == last["gt_regret"]


def test_validate_says_which_file_data_set_and_best(scored, files):
    run = raynas("validate", str(scored["config"]))
    assert run.returncode == 0, run.stderr
    assert (f"ground truth: on (NAS-Bench-201 file '{files['pth']}': cifar10 test accuracy after 200 epochs, "
            "15,625 arch strings in 6,466 unique cells, best 94.37 % (the published best))") in run.stdout


@pytest.mark.parametrize("change, message", [
    ({"benchmark": {"official": "{tmp}/NAS-Bench-201-v1_1-096897.pth"}},
     "benchmark.official = '{tmp}/NAS-Bench-201-v1_1-096897.pth': not an existing file or folder; name a "
     "NAS-Bench-201 .pth file"),
    ({"benchmark": {"official": "{tmp}/garbage.pth"}},
     "benchmark.official: '{tmp}/garbage.pth' cannot be read as a NAS-Bench-201 file"),
    ({"benchmark": {"official": "{tmp}/folder"}},
     "benchmark.official: '{tmp}/folder' is a folder without meta.pickle.pbz2; expected a NAS-Bench-201 .pth"),
    ({"benchmark": {"official": "{tmp}/garbage.pth", "score": "auto"}, "tune": {"metric": "derived_val_acc"}},
     "benchmark.official: '{tmp}/garbage.pth' cannot be read"),  # named, so read whatever the mode
    ({"data": {"name": "digits", "root": None}},
     "tune.metric = 'gt_test_acc': needs the ground truth, but data.name is 'digits'; the official files cover "
     "'cifar10', 'cifar100', 'imagenet16'"),
    ({"data": {"noise_std": 0.5}, "benchmark": {"score": "on"}, "tune": {"metric": "derived_val_acc"}},
     "benchmark.score = 'on': data.noise_std is 0.5, not 0 (the benchmark's images are clean)"),
    ({"benchmark": {"table": ["{tmp}"]}},
     "benchmark.table = ['{tmp}']: must be null with benchmark.official"),
], ids=["missing", "garbage", "no-meta", "garbage-auto", "digits", "noise", "with-table"])
def test_a_bad_file_or_setting_is_one_line_and_exit_code_2(files, tmp_path_factory, change, message):
    tmp_path = tmp_path_factory.mktemp("b")  # short: config errors cut values past 80 characters
    (tmp_path / "garbage.pth").write_bytes(b"\x00" * 64)
    (tmp_path / "folder").mkdir()
    config = search_config(files)
    for name, values in change.items():
        values = json.loads(json.dumps(values).replace("{tmp}", str(tmp_path)))
        config[name] = {**config[name], **values}
    out = tmp_path / "out"
    run = raynas("search", str(write_config(tmp_path / "bad.yaml", config)), "--out", str(out))
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1, run.stderr
    assert message.replace("{tmp}", str(tmp_path)) in lines[0]
    assert not out.exists()  # refused before anything was written
