"""Bad input through the real CLI: every case is one stderr line ``error: ...`` naming the field and its limit,
exit code 2, and nothing on disk (issue 24, "Bounds and one-line errors").

Each fails before Ray starts, so these are fast. Before the bounds, these cases printed a traceback
(RecursionError, MemoryError, OSError, RuntimeError), three lines of click usage, or were accepted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import ROOT, cli_env, raynas  # noqa: E402

QUICKSTART = str(ROOT / "search_configs" / "quickstart.yaml")
NB201_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
EDGES = ("[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
         "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)]")
HUGE_RANGE_GENOTYPE = (f"Genotype(normal={EDGES}, normal_concat=range(0, 1000000000000), reduce={EDGES}, "
                       "reduce_concat=[2, 3, 4, 5])")


def one_line_error(run: subprocess.CompletedProcess, *words: str) -> str:
    """Assert the run failed as a usage error in one stderr line that holds every one of ``words``."""
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def nothing_in(folder: Path) -> bool:
    """Whether ``folder`` is absent or empty."""
    return not folder.exists() or not any(folder.iterdir())


def search_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def search(tmp_path: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    return raynas("search", str(config), "--out", str(tmp_path / "out"), *args)


def test_a_5000_deep_yaml_list(tmp_path: Path) -> None:
    config = search_config(tmp_path, "name: deep\nspace: nb201\nx: " + "[" * 5000 + "]" * 5000 + "\n")
    one_line_error(search(tmp_path, config), "config.yaml: invalid YAML at line 3", "nested deeper than 64 levels")
    assert nothing_in(tmp_path / "out")


def test_a_key_written_twice(tmp_path: Path) -> None:
    config = search_config(tmp_path, "name: dup\nspace: nb201\nsearch:\n  epochs: 2\nsearch:\n  epochs: 3\n")
    one_line_error(search(tmp_path, config), "line 5", "duplicate key 'search' (first at line 3)")
    assert nothing_in(tmp_path / "out")


def test_yaml_aliases_expanding_80_times_per_level(tmp_path: Path) -> None:
    lines = ["name: laughs", "space: nb201", "a0: &a0 [" + ", ".join(["x"] * 80) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 80) + "]" for i in range(1, 9)]
    config = search_config(tmp_path, "\n".join(lines) + "\n")
    one_line_error(search(tmp_path, config), "aliases expand the document to more than 100000 values")
    assert nothing_in(tmp_path / "out")


@pytest.mark.parametrize(("setting", "words"), [
    ("supernet:\n  channels: 100000000\n", ("supernet.channels = 100000000", "<= 4096")),
    ("search:\n  epochs: 100000000000000000000000000000\n",
     ("search.epochs = 100000000000000000000000000000", "<= 100000")),
    ("supernet:\n  channels: 1e8\n", ("supernet.channels = '1e8'", "must be an integer")),  # the spelling
    ("search:\n  epochs: 1e29\n", ("search.epochs = '1e29'", "must be an integer")),
])
def test_sizes_past_their_limit(tmp_path: Path, setting: str, words: tuple[str, ...]) -> None:
    config = search_config(tmp_path, "name: big\nspace: nb201\n" + setting)
    one_line_error(search(tmp_path, config), *words)
    assert nothing_in(tmp_path / "out")


def test_a_grid_of_seeds_past_the_seed_limit(tmp_path: Path) -> None:
    run = search(tmp_path, Path(QUICKSTART), "--set", "tune.grid.search.seed=[0, 5000000000]")
    one_line_error(run, "tune.grid['search.seed'] = 5000000000", "<= 4294967295")
    assert nothing_in(tmp_path / "out")


def test_a_genotype_concat_range_of_10_to_the_12(tmp_path: Path) -> None:
    one_line_error(raynas("arch", "show", HUGE_RANGE_GENOTYPE), "normal_concat = range(0, 1000000000000)",
                   "at most 100")
    # the spelling: an expression is not evaluated, only literals are read
    one_line_error(raynas("arch", "show", HUGE_RANGE_GENOTYPE.replace("1000000000000", "10**12")),
                   "normal_concat must be a literal list, got '10 ** 12'")
    run = raynas("train", HUGE_RANGE_GENOTYPE, "--out", str(tmp_path / "out"))
    one_line_error(run, "has 1000000000000 nodes; a concat may have at most 100")
    assert nothing_in(tmp_path / "out")


def test_train_seeds_0_to_10_to_the_12(tmp_path: Path) -> None:
    run = raynas("train", NB201_CELL, "--seeds", "0-1000000000000", "--out", str(tmp_path / "out"))
    one_line_error(run, "--seeds = '0-1000000000000'", "<= 4294967295")
    run = raynas("train", NB201_CELL, "--seeds", "0-5000", "--out", str(tmp_path / "out"))
    one_line_error(run, "--seeds = '0-5000': 5001 seeds; at most 1000")
    assert nothing_in(tmp_path / "out")


def test_bench_build_seeds_0_to_10_to_the_12(tmp_path: Path) -> None:
    run = raynas("bench", "build", "--seeds", "0-1000000000000", "--out", str(tmp_path / "out"))
    one_line_error(run, "--seeds = '0-1000000000000'", "<= 4294967295")
    assert nothing_in(tmp_path / "out")


@pytest.mark.parametrize(("option", "value", "limit"), [
    ("--channels", "-4", ">= 1 and <= 4096"), ("--channels", "0", ">= 1 and <= 4096"),
    ("--layers", "0", ">= 1 and <= 1000"), ("--classes", "0", ">= 1 and <= 100000"),
])
def test_arch_show_sizes_out_of_range(option: str, value: str, limit: str) -> None:
    one_line_error(raynas("arch", "show", NB201_CELL, "--space", "nb201", option, value),
                   f"{option} = {value}: must be {limit}")


def test_arch_show_refuses_a_network_too_large_to_hold() -> None:
    one_line_error(raynas("arch", "show", NB201_CELL, "--space", "nb201", "--channels", "4096"),
                   "parameters; at most 1,000,000,000 are built")


@pytest.mark.parametrize("command", ["search", "train", "bench"])
@pytest.mark.parametrize("out", ["/proc/x", "afile/sub"])
def test_an_out_folder_that_cannot_be_created(tmp_path: Path, command: str, out: str) -> None:
    (tmp_path / "afile").write_text("")
    args = {"search": ["search", QUICKSTART], "train": ["train", NB201_CELL], "bench": ["bench", "build"]}[command]
    run = raynas(*args, "--out", out, cwd=tmp_path)
    reason = "cannot create folders in '/proc'" if out == "/proc/x" else "afile' is a file, not a folder"
    one_line_error(run, f"--out = '{out}'", reason)
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]


@pytest.mark.parametrize("args", [["train", NB201_CELL, "--name", "../../x"], ["bench", "build", "--name", "../x"],
                                  ["train", NB201_CELL, "--name", "a/b"]])
def test_a_name_with_a_path_is_refused(tmp_path: Path, args: list[str]) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    run = raynas(*args, "--out", "out", cwd=work)
    one_line_error(run, "--name = ", "must be a folder name", "(no '/' or '..')")
    assert [p.name for p in tmp_path.rglob("*")] == ["a", "b"]


def test_a_long_config_name_is_refused(tmp_path: Path) -> None:
    run = search(tmp_path, Path(QUICKSTART), "--set", "name=" + "x" * 300)
    one_line_error(run, "300 characters; a name may have at most 128")
    assert nothing_in(tmp_path / "out")


@pytest.mark.parametrize(("args", "words"), [
    (["search", QUICKSTART, "--bogus"], ("No such option '--bogus'", "see 'raynas search --help'")),
    (["search"], ("Missing argument 'CONFIG'",)),
    (["nosuch"], ("No such command 'nosuch'", "see 'raynas --help'")),
    (["arch", "show", NB201_CELL, "--channels", "abc"], ("'abc' is not a valid integer",)),
])
def test_click_usage_errors_are_one_line(args: list[str], words: tuple[str, ...]) -> None:
    assert not one_line_error(raynas(*args), *words).startswith(("error: Usage", "error: Error"))


def test_an_oserror_no_check_caught_is_one_line_and_shown_in_full_on_request(tmp_path: Path) -> None:
    # bench merge writes its --out file without a check of the folder first: the CLI's last resort answers.
    table = str(ROOT / "raynas" / "benchmark" / "data" / "nb201_digits.parquet")
    args = [sys.executable, "-m", "raynas.cli", "bench", "merge", table, "--out", "/proc/x/t.parquet"]
    run = subprocess.run(args, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300)
    one_line_error(run, "'/proc/x'", "No such file or directory", "RAYNAS_DEBUG=1 shows the traceback")
    debug = subprocess.run(args, cwd=tmp_path, env={**cli_env(), "RAYNAS_DEBUG": "1"}, capture_output=True,
                           text=True, timeout=300)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1].startswith("FileNotFoundError")
    assert nothing_in(tmp_path)


def test_a_darts_genotype_source_longer_than_a_file_name_is_read_as_a_genotype(tmp_path: Path) -> None:
    # Path.is_dir() raised ENAMETOOLONG for a DARTS genotype (over 255 bytes): train and export failed on it.
    genotype = HUGE_RANGE_GENOTYPE.replace("range(0, 1000000000000)", "[2, 3, 4, 5]")
    (tmp_path / "afile").write_text("")
    run = raynas("train", genotype, "--out", "afile/sub", cwd=tmp_path)
    one_line_error(run, "--out = 'afile/sub'")  # the genotype passed: the run stopped at the next check
    run = raynas("export", genotype, "--out", "afile/sub", cwd=tmp_path)
    one_line_error(run, "--out = 'afile/sub'")
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]
