"""Every example the CLI's help texts give works: each is run through the real CLI where that is cheap, else
checked by the code that would read it.

The help texts are read from the real CLI (``raynas ... --help`` of every command, in one subprocess); the
examples are found in them by their shape, so an example added later is checked too:

- ``--set KEY=VALUE``: a search command's are run by ``raynas validate`` on the quickstart config; a
  training one's by ``raynas train`` up to its last check (an existing run folder, which is refused only
  after every setting was read: the first error it meets is that one, not the example's);
- ``raynas COMMAND ... --option``: the command exists and has the option;
- the ``--where`` filter of ``raynas results``: compiles against the trials table's columns;
- a config file name in the help of search, validate or configs (``asha_nb201.yaml``; not a path): a
  config ``raynas configs`` lists, so that
  ``raynas search asha_nb201.yaml`` runs it from any folder.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import ROOT, cli_env, raynas  # noqa: E402

NB201_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
SEARCH_COMMANDS = {"search", "validate"}  # their --set keys are a search config's
TRAIN_COMMANDS = {"train"}  # a training config's


def command_paths() -> list[tuple[str, ...]]:
    """Every command of the CLI (subcommands of groups included), as the words that name it."""
    from raynas.cli import main

    paths: list[tuple[str, ...]] = []

    def walk(group: click.Group, prefix: tuple[str, ...]) -> None:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                walk(command, (*prefix, name))
            else:
                paths.append((*prefix, name))
    walk(main, ())
    return paths


#: prints {command words: the help the CLI prints for them} as JSON: every command's --help, in one process
HELPS = """
import contextlib, io, json, sys
from raynas.cli import main
helps = {}
for path in json.loads(sys.argv[1]):
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        try:
            main([*path, "--help"], prog_name="raynas", standalone_mode=False)
        except SystemExit:
            pass
    helps[" ".join(path)] = text.getvalue()
print(json.dumps(helps))
"""


@pytest.fixture(scope="module")
def helps() -> dict[tuple[str, ...], str]:
    """Command words -> the help the real CLI prints for them, unwrapped into one line of words."""
    paths = command_paths()
    result = subprocess.run([sys.executable, "-c", HELPS, json.dumps(paths)], cwd=ROOT, env=cli_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    texts = {tuple(key.split()): " ".join(text.split()) for key, text in json.loads(result.stdout).items()}
    assert set(texts) == set(paths) and all(text.startswith("Usage: raynas ") for text in texts.values())
    return texts


def set_examples(helps: dict[tuple[str, ...], str]) -> list[tuple[tuple[str, ...], str]]:
    return sorted({(path, example) for path, text in helps.items()
                   for example in re.findall(r"--set ([a-z][\w.]*=[^\s,;)]+)", text)})


def test_the_help_texts_hold_set_examples_of_both_kinds(helps):
    """The extraction below finds what it checks (else the checks would pass on nothing)."""
    commands = {path[0] for path, _ in set_examples(helps)}
    assert SEARCH_COMMANDS | TRAIN_COMMANDS <= commands, set_examples(helps)
    assert commands <= SEARCH_COMMANDS | TRAIN_COMMANDS, "a command whose --set examples this test cannot check"


def test_every_search_set_example_is_accepted(helps):
    examples = sorted({example for path, example in set_examples(helps) if path[0] in SEARCH_COMMANDS})
    args = [arg for example in examples for arg in ("--set", example)]
    result = raynas("validate", "search_configs/quickstart.yaml", *args)
    assert result.returncode == 0, (examples, result.stderr)
    for example in examples:  # each alone too: one example's error must not hide behind another's value
        alone = raynas("validate", "search_configs/quickstart.yaml", "--set", example)
        assert alone.returncode == 0, (example, alone.stderr)


def test_every_training_set_example_is_accepted(helps, tmp_path):
    examples = sorted({example for path, example in set_examples(helps) if path[0] in TRAIN_COMMANDS})
    (tmp_path / "taken").mkdir()  # refused after every setting is read: reaching that error means they were fine
    for example in examples:
        result = raynas("train", NB201_CELL, "--set", example, "--out", str(tmp_path), "--name", "taken")
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"error: evaluation folder '{tmp_path / 'taken'}' already exists"), \
            (example, result.stderr)


def test_a_wrong_training_key_fails_the_same_check(tmp_path):
    """The check above can fail: a search config's key given to train is refused before the folder check."""
    (tmp_path / "taken").mkdir()
    result = raynas("train", NB201_CELL, "--set", "search.epochs=5", "--out", str(tmp_path), "--name", "taken")
    assert result.returncode == 2 and "search" in result.stderr and "already exists" not in result.stderr, \
        result.stderr


#: ``raynas WORDS`` then its arguments as a command line writes them: placeholders, CAPITALS, --options and
#: their values (prose after the words, "raynas validate prints its length", ends it)
MENTION = re.compile(r"\braynas ((?:[a-z0-9]+ )*[a-z0-9]+)((?: (?:<[^>]*>|[A-Z_]+|--[a-z-]+(?: [a-z0-9_]+)?))*)")


def test_every_command_the_help_names_exists_with_its_options(helps):
    """The longest command the words of a mention name exists and has the options written after it."""
    names = {path[0] for path in helps}
    mentions = [(path, words.split(), rest) for path, text in helps.items()
                for words, rest in MENTION.findall(text.split("]", 1)[1])  # not the usage line
                if words.split()[0] in names or words.split()[0] not in ENGLISH]
    assert len(mentions) >= 5, mentions  # the help texts point at other commands
    for path, words, rest in mentions:
        named = max((p for p in helps if tuple(words[:len(p)]) == p), key=len, default=None)
        assert named is not None, f"'raynas {' '.join(words)}' in the help of {' '.join(path)}: no such command"
        for option in re.findall(r"--[a-z][a-z-]*", rest):
            assert f"{option} " in helps[named] or f"{option}," in helps[named], \
                f"'raynas {' '.join(words)}{rest}' in the help of {' '.join(path)}: {' '.join(named)} has no {option}"


#: words after "raynas" in the help texts' prose that are not meant as a command
ENGLISH = {"command"}


def test_the_results_filter_example_compiles(helps):
    from raynas.results.filter_expression import compile_filter
    from raynas.results.schema import TRIALS

    examples = re.findall(r'e\.g\. "([^"]+)"', helps[("results",)])
    assert examples
    for example in examples:
        compile_filter(example, TRIALS)


def test_every_config_the_help_names_is_shipped(helps):
    listed = {line.split()[0] for line in raynas("configs").stdout.splitlines()[:-1]}
    named = {name for path, text in helps.items() if path[0] in SEARCH_COMMANDS | {"configs"}  # (others name
             for name in re.findall(r"(?<![\w/.-])(\w+)\.yaml\b", text)}              # a folder's files)
    assert len(named) >= 5, named  # the search help names its examples
    assert named <= listed, f"named in a help text but not shipped: {sorted(named - listed)}"
