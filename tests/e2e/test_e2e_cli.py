"""The CLI's other commands, run as subprocesses: --help, arch show, train."""

from __future__ import annotations

import json
import subprocess
import sys

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from cli_helpers import ROOT, cli_env, raynas  # noqa: E402

DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
CONV_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
DEAD_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|"


def test_help_imports_neither_torch_nor_ray():
    code = ("import sys\nfrom raynas.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'ray') if m in sys.modules]\nprint('HEAVY', heavy)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cli_env(), capture_output=True, text=True)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr
    assert "search" in result.stdout and "train" in result.stdout


def help_commands(*words: str) -> list[str]:
    """The lines of the command list of ``raynas WORDS --help`` on an 80-column terminal."""
    result = subprocess.run([sys.executable, "-m", "raynas.cli", *words, "--help"], cwd=ROOT,
                            env={**cli_env(), "COLUMNS": "80"}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("Commands:\n", 1)[1].rstrip("\n").splitlines()


def test_help_lists_the_commands_as_the_workflow_goes_each_on_one_whole_line():
    """Every command once, on one line of its own (a summary wrapped onto a second line, or cut with "...",
    fails), the root's in the workflow's order, a group's in its own."""
    from raynas.cli import main

    names = [line.split()[0] for line in help_commands()]
    assert names[:7] == ["search", "results", "plot", "report", "train", "export", "resume"]
    assert sorted(names) == sorted(main.commands)
    lines = help_commands()
    for group in ("bench", "e2nas", "arch"):
        group_lines = help_commands(group)
        assert [line.split()[0] for line in group_lines] == list(main.commands[group].commands)
        lines += group_lines
    assert not [line for line in lines if line.endswith("...") or len(line) > 80], lines
    assert [line.split()[0] for line in help_commands("bench")] == ["build", "lookup", "merge", "info"]


def test_arch_show_darts_v2_param_count():
    result = raynas("arch", "show", DARTS_V2, "--space", "darts", "--channels", "36", "--layers", "20",
                    "--classes", "10", "--auxiliary", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["params"] == 3_349_342
    assert info["params_total"] > info["params"]
    assert info["connected"] is True


def test_arch_show_flags_disconnected_nb201_cell():
    result = raynas("arch", "show", DEAD_CELL, "--space", "nb201", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["connected"] is False and info["channels"] == 16 and info["layers"] == 5


def test_arch_show_guesses_the_space_from_the_text():
    """Without --space an arch string is an NB201 cell and Genotype(...) a DARTS one, as train and export guess."""
    nb201 = raynas("arch", "show", CONV_CELL, "--json")
    assert nb201.returncode == 0, nb201.stderr
    assert json.loads(nb201.stdout)["space"] == "nb201"
    darts = raynas("arch", "show", DARTS_V2, "--channels", "8", "--layers", "5", "--json")
    assert darts.returncode == 0, darts.stderr
    assert json.loads(darts.stdout)["space"] == "darts"


def test_arch_show_bad_genotype_is_a_usage_error():
    result = raynas("arch", "show", "|nor_conv_9x9~0|+|", "--space", "nb201")
    assert result.returncode == 2 and result.stderr.startswith("error: ")


def test_train_refuses_disconnected_cell():
    result = raynas("train", DEAD_CELL, "--space", "nb201", "--dataset", "digits", "--epochs", "1")
    assert result.returncode == 2
    assert "no path" in result.stderr and len(result.stderr.strip().splitlines()) == 1
