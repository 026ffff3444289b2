"""The official NAS-Bench-201 / NATS-Bench files as ground truth: small files written here in the official
layouts (tests/benchmark/official_format.py, built with nats_bench's own classes) are read by raynas and, for
comparison, by nats_bench's own API; the lookup's percentile and regret; the extraction cache; and the
one-line errors of missing and malformed files."""

from __future__ import annotations

import bz2
import os
import pickle
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from official_format import shuffled_archs, write_nats_file, write_nats_folder, write_nb201_pth  # noqa: E402

from raynas.benchmark.cells import unique_cells  # noqa: E402
from raynas.benchmark.official import (OfficialGroundTruth, extraction_path, load_official,  # noqa: E402
                                       official_cache_dir)
from raynas.benchmark.official_files import TEST_SETS, read_official  # noqa: E402
from raynas.errors import ConfigError  # noqa: E402

nats_bench = pytest.importorskip("nats_bench")

ARCHS = shuffled_archs()
#: a handful of archs: index -> per data set, the 200-epoch test accuracy of each seed (percent)
ENTRIES = {
    3: {"cifar10-valid": [89.0, 89.5], "cifar10": [93.1, 93.5, 93.3], "cifar100": [70.2, 70.8],
        "ImageNet16-120": [44.0, 45.0, 46.0]},
    17: {"cifar10-valid": [80.0], "cifar10": [88.0], "cifar100": [60.0], "ImageNet16-120": [30.0]},
    4242: {"cifar10": [94.37], "cifar100": [73.51], "ImageNet16-120": [47.31]},  # no cifar10-valid
    15624: {"cifar10-valid": [10.0, 10.0], "cifar10": [10.0, 10.0], "cifar100": [1.0], "ImageNet16-120": [0.83]},
}


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def expected_table() -> dict[tuple[int, str], float]:
    return {(i, key): mean(acc) for i, entry in ENTRIES.items() for key, acc in entry.items()}


def check_read(path: Path) -> None:
    """raynas' reading of ``path``: every arch of meta_archs, the given entries' means, nulls elsewhere."""
    table = read_official(path)
    assert table.num_rows == len(ARCHS) and table["arch"].to_pylist() == ARCHS
    expected = expected_table()
    for key in TEST_SETS:
        column = table[key].to_pylist()
        for index in ENTRIES:
            assert column[index] == pytest.approx(expected.get((index, key))) if (index, key) in expected \
                else column[index] is None
        assert sum(value is not None for value in column) == sum((i, key) in expected for i in ENTRIES)


def nats_bench_answer(api, index: int, key: str) -> float:
    """What nats_bench's own API says: the 200-epoch test accuracy, averaged over seeds."""
    return api.get_more_info(index, key, hp="200", is_random=False)["test-accuracy"]


def test_nb201_pth_reads_as_nats_bench_reads_it(tmp_path):
    path = write_nb201_pth(tmp_path / "NAS-Bench-201-v1_1-096897.pth", ARCHS, ENTRIES)
    check_read(path)
    # nats_bench reads a NAS-Bench-201 dict once its "less"/"full" keys are its hp names "12"/"200"
    raw = torch.load(path, weights_only=False)
    raw["arch2infos"] = {i: {"12": v["less"], "200": v["full"]} for i, v in raw["arch2infos"].items()}
    api = nats_bench.create(raw, "tss", fast_mode=False, verbose=False)
    table = read_official(path)
    for index, entry in ENTRIES.items():
        assert api.query_index_by_arch(ARCHS[index]) == index
        for key in entry:
            assert table[key][index].as_py() == pytest.approx(nats_bench_answer(api, index, key))


def test_nats_fast_mode_folder_reads_as_nats_bench_reads_it(tmp_path):
    folder = write_nats_folder(tmp_path / "NATS-tss-v1_0-3ffb9-simple", ARCHS, ENTRIES)
    assert {name for name in os.listdir(folder)} == {"meta.pickle.pbz2", *(f"{i:06d}.pickle.pbz2" for i in ENTRIES)}
    check_read(folder)
    api = nats_bench.create(str(folder), "tss", fast_mode=True, verbose=False)
    table = read_official(folder)
    for index, entry in ENTRIES.items():
        for key in entry:
            assert table[key][index].as_py() == pytest.approx(nats_bench_answer(api, ARCHS[index], key))


def test_nats_single_file_reads_as_nats_bench_reads_it(tmp_path):
    path = write_nats_file(tmp_path / "NATS-tss-v1_0-3ffb9.pickle.pbz2", ARCHS, ENTRIES)
    check_read(path)
    api = nats_bench.create(str(path), "tss", fast_mode=False, verbose=False)
    table = read_official(path)
    assert table["cifar100"][3].as_py() == pytest.approx(nats_bench_answer(api, 3, "cifar100")) == 70.5


def test_the_lookup_ranks_unique_cells_and_measures_regret_to_the_best(tmp_path):
    cells = unique_cells()
    # two arch strings of one cell (isomorphic) with different accuracies, and two other cells
    shared = next(cell for cell, members in enumerate(cells.members) if members >= 2)
    twins = [arch for arch in ARCHS if cells.cell_id(arch) == shared][:2]
    others = list({cells.cell_id(arch): arch for arch in ARCHS if cells.cell_id(arch) != shared}.values())[:2]
    chosen = {twins[0]: 90.0, twins[1]: 92.0, others[0]: 91.0, others[1]: 94.37}
    entries = {ARCHS.index(arch): {"cifar10": [acc]} for arch, acc in chosen.items()}
    path = write_nb201_pth(tmp_path / "nb201.pth", ARCHS, entries, epochs=3)
    truth = OfficialGroundTruth.open(path, "cifar10", tmp_path / "cache")
    assert truth.num_archs == 4 and truth.num_cells == 3 and truth.best == pytest.approx(0.9437)
    # the twins' cell counts once, at its mean 91.0; others[0] (91.0) ties with it
    score = truth.score(twins[1])
    assert score.test_acc == pytest.approx(0.92)  # an arch string's own accuracy, as NB201 papers report it
    assert score.percentile == pytest.approx(100 * 2 / 3) and score.regret == pytest.approx(0.9437 - 0.92)
    assert truth.score(twins[0]).percentile == pytest.approx(0.0)  # 90.0: below every cell's accuracy
    assert truth.score(others[0]).percentile == pytest.approx(100 * 2 / 3)  # at or below: 91.0 and 91.0
    assert truth.score(others[1]).regret == 0.0 and truth.score(others[1]).percentile == 100.0
    assert truth.best_note() == "best 94.37 % (the published best)"
    spaced = twins[1].replace("|", " | ")  # any spacing of an arch string is the same arch
    assert truth.score(spaced).test_acc == score.test_acc
    with pytest.raises(ConfigError) as err:
        truth.score(ARCHS[5])
    assert "has no 200-epoch cifar10 test accuracy for" in str(err.value) and "\n" not in str(err.value)
    assert "4 of the 15,625 arch strings have one" in str(err.value)


@pytest.mark.parametrize("data_name, key, published", [("cifar10", "cifar10", 94.37),
                                                       ("cifar100", "cifar100", 73.51),
                                                       ("imagenet16", "ImageNet16-120", 47.31)])
def test_each_data_set_is_scored_by_its_own_accuracies_with_regret_to_its_published_best(
        tmp_path, data_name, key, published):
    path = write_nats_folder(tmp_path / "NATS-tss-v1_0-3ffb9-simple", ARCHS, ENTRIES, epochs=3)
    truth = OfficialGroundTruth.open(path, data_name, tmp_path / "cache")
    assert truth.dataset == key and truth.published_best == pytest.approx(published / 100)
    assert truth.best_note() == f"best {published:.2f} % (the published best)"
    assert truth.score(ARCHS[4242]).regret == 0.0
    score = truth.score(ARCHS[3])  # the mean over its seeds on this data set, not another's
    assert score.test_acc == pytest.approx(mean(ENTRIES[3][key]) / 100)
    assert score.regret == pytest.approx((published - mean(ENTRIES[3][key])) / 100)


def test_a_file_whose_best_differs_from_the_published_one_uses_its_own(tmp_path):
    path = write_nb201_pth(tmp_path / "nb201.pth", ARCHS, {0: {"cifar100": [70.0]}, 1: {"cifar100": [72.5]}},
                           epochs=2)
    truth = OfficialGroundTruth.open(path, "cifar100", tmp_path / "cache")
    assert truth.best == pytest.approx(0.725) and truth.score(ARCHS[0]).regret == pytest.approx(0.025)
    assert truth.best_note() == "best 72.50 % (this file's own best; the published one is 73.51 %)"
    with pytest.raises(ConfigError, match="has no 200-epoch test accuracies on ImageNet16-120"):
        OfficialGroundTruth.open(path, "imagenet16", tmp_path / "cache")
    with pytest.raises(ConfigError, match="data.name 'digits' is not a benchmark data set"):
        OfficialGroundTruth.open(path, "digits", tmp_path / "cache")


def test_the_extraction_is_cached_refreshed_when_the_file_changes_and_serves_a_file_not_visible(tmp_path):
    path = write_nb201_pth(tmp_path / "nb201.pth", ARCHS, {0: {"cifar10": [50.0]}}, epochs=2)
    cache = tmp_path / "cache"
    assert load_official(path, cache)["cifar10"][0].as_py() == 50.0
    cached = extraction_path(path, cache)
    assert cached.is_file() and cached.parent == cache
    first = cached.stat().st_mtime_ns
    assert load_official(path, cache)["cifar10"][0].as_py() == 50.0
    assert cached.stat().st_mtime_ns == first  # read from the cache, not written again
    write_nb201_pth(path, ARCHS, {0: {"cifar10": [60.0, 61.0]}}, epochs=2)  # another size and time
    assert load_official(path, cache)["cifar10"][0].as_py() == 60.5
    path.unlink()  # e.g. a cluster node without the file: the cached extraction serves it
    assert load_official(path, cache)["cifar10"][0].as_py() == 60.5
    with pytest.raises(ConfigError, match="is not an existing file or folder"):
        load_official(path, tmp_path / "empty_cache")


def test_the_default_cache_is_under_raynas_benchmark_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RAYNAS_BENCHMARK_CACHE", str(tmp_path / "c"))
    path = write_nb201_pth(tmp_path / "nb201.pth", ARCHS, {0: {"cifar10": [50.0]}}, epochs=2)
    load_official(path)
    assert official_cache_dir() == tmp_path / "c" / "official"
    assert extraction_path(path, tmp_path / "c" / "official").is_file()


class _Planted:
    """A pickled object whose loading would create a file (what a malicious results file would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def one_line_error(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        read_official(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith("benchmark.official: ")
    return message


def test_missing_and_malformed_files_are_one_line_errors_naming_the_path(tmp_path):
    assert f"'{tmp_path / 'nope.pth'}' is not an existing file or folder; expected a NAS-Bench-201 .pth" in \
        one_line_error(tmp_path / "nope.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file at all")
    assert f"'{garbage}' cannot be read as a NAS-Bench-201 file" in one_line_error(garbage)
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    assert f"'{empty}' is a folder without meta.pickle.pbz2" in one_line_error(empty)
    no_infos = tmp_path / "no_infos.pth"
    torch.save({"meta_archs": ARCHS[:3]}, no_infos)
    assert "holds no 'arch2infos' dict" in one_line_error(no_infos)
    not_archs = tmp_path / "not_archs.pth"
    torch.save({"meta_archs": ["resnet"], "arch2infos": {}, "evaluated_indexes": []}, not_archs)
    assert "meta_archs[0] = 'resnet' is not an NB201 arch string" in one_line_error(not_archs)
    bad_key = tmp_path / "bad_key.pth"
    torch.save({"meta_archs": ARCHS[:2], "arch2infos": {7: {}}, "evaluated_indexes": []}, bad_key)
    assert "arch2infos has the key 7, not an index of meta_archs (0-1)" in one_line_error(bad_key)
    no_full = tmp_path / "no_full.pth"
    torch.save({"meta_archs": ARCHS[:2], "arch2infos": {1: {"less": {}}}, "evaluated_indexes": [1]}, no_full)
    assert "(arch 1) has no 200-epoch results" in one_line_error(no_full)
    broken = tmp_path / "broken.pth"
    torch.save({"meta_archs": ARCHS[:2], "arch2infos": {0: {"full": {"dataset_seed": {"cifar10": [1]},
                                                                      "all_results": {}}}},
                "evaluated_indexes": [0]}, broken)
    assert "(arch 0): malformed 200-epoch results (KeyError: ('cifar10', 1))" in one_line_error(broken)
    nothing = tmp_path / "nothing.pth"
    torch.save({"meta_archs": ARCHS[:2], "arch2infos": {0: {"full": {"all_results": {}}}},
                "evaluated_indexes": [0]}, nothing)
    assert "(arch 0): its 200-epoch results name none of the data sets cifar10-valid" in one_line_error(nothing)


def test_a_corrupt_arch_file_in_a_folder_names_the_folder_and_the_file(tmp_path):
    folder = write_nats_folder(tmp_path / "simple", ARCHS, {3: ENTRIES[3]}, epochs=3)
    (folder / "000003.pickle.pbz2").write_bytes(b"BZh9 torn")
    message = one_line_error(folder)
    assert f"'{folder}': 000003.pickle.pbz2 cannot be read as a bz2-compressed pickle" in message


def test_files_that_would_run_code_are_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    folder = write_nats_folder(tmp_path / "simple", ARCHS, {}, epochs=2)
    with bz2.BZ2File(folder / "000000.pickle.pbz2", "wb") as handle:
        pickle.dump({"200": _Planted(marker)}, handle)
    assert "it references pathlib" in one_line_error(folder)
    pth = tmp_path / "planted.pth"
    torch.save({"meta_archs": ARCHS[:1], "arch2infos": {0: {"full": _Planted(marker)}}, "evaluated_indexes": []},
               pth)
    assert "cannot be read as a NAS-Bench-201 file" in one_line_error(pth)
    assert not marker.exists()


def test_which_searches_an_official_file_scores(tmp_path):
    from raynas.benchmark.official import data_obstacle
    from raynas.benchmark.scoring import resolve_scoring
    from raynas.config import config_from_dict

    sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
    from test_data_vision import _write_cifar100

    assert data_obstacle({"name": "imagenet16", "noise_std": 0.0, "image_size": None}) is None
    assert data_obstacle({"name": "imagenet16", "noise_std": 0.0, "image_size": 16}) is None
    assert data_obstacle({"name": "imagenet16", "noise_std": 0.0, "image_size": 32}) == \
        "data.image_size is 32, not null or 16 (imagenet16's own size, the benchmark's)"
    assert data_obstacle({"name": "synthetic"}).startswith("data.name is 'synthetic'; the official files cover")
    _write_cifar100(tmp_path / "cifar")
    path = write_nb201_pth(tmp_path / "nb201.pth", ARCHS, {0: {"cifar100": [73.51]}, 1: {"cifar10": [90.0]}},
                           epochs=2)

    def resolved(**data):
        config = {"space": "nb201", "data": {"name": "cifar100", "root": str(tmp_path / "cifar"), **data},
                  "benchmark": {"official": str(path), "cache_dir": str(tmp_path / "cache")}}
        return resolve_scoring(config_from_dict(config), tmp_path / "exp").benchmark

    assert resolved().score == "on" and resolved().cache_dir == str((tmp_path / "cache").resolve())
    assert resolved(noise_std=0.1).score == "off"  # auto: not the benchmark's images, so not scored
    assert resolved(image_size=16).score == "off"


def test_bench_lookup_reads_an_official_file(tmp_path):
    import json

    sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
    from cli_helpers import raynas

    path = write_nb201_pth(tmp_path / "nb201.pth", ARCHS, {0: {"cifar100": [70.0]}, 1: {"cifar100": [73.51]}},
                           epochs=2)
    cache = str(tmp_path / "cache")
    run = raynas("bench", "lookup", ARCHS[0], "--official", str(path), "--data", "cifar100", "--cache", cache)
    assert run.returncode == 0, run.stderr
    assert f"{ARCHS[0]}  cell {unique_cells().cell_id(ARCHS[0])}  test_acc 0.7000  percentile 50.0  " \
           "regret 0.0351  (official file)" in run.stdout
    run = raynas("bench", "lookup", ARCHS[1], "--official", str(path), "--data", "cifar100", "--cache", cache,
                 "--json")
    assert json.loads(run.stdout)[0]["regret"] == 0.0
    run = raynas("bench", "lookup", ARCHS[2], "--official", str(path), "--data", "cifar100", "--cache", cache)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "has no 200-epoch cifar100 test accuracy" in \
        run.stderr
