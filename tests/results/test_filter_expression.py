"""The ``--where`` / ``where=`` filter language: what it keeps, what it refuses, and that it never runs code.

Each allowed construct is checked against the pandas mask a user would write for it, on an Arrow table with
missing values in every kind of column; the refusals go through the real CLI on a real experiment folder
written by :class:`raynas.results.ResultsWriter`, and through the Python API; the README's and docs/'
filter examples run against real tables.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from results_trainable_helper import make_report

from raynas.errors import ResultsError
from raynas.results import ResultsWriter, leaderboard, load_table, summarise_trial, rows_from_report
from raynas.results.filter_expression import ALLOWED, MAX_DEPTH, MAX_LENGTH, filter_table

ROOT = Path(__file__).resolve().parents[2]


def _typed_table() -> pa.Table:
    """Six rows; every column type the result tables use, each with a missing value (NaN too for floats)."""
    return pa.table({
        "seed": pa.array([0, 1, None, 3, 50, -2], pa.int64()),
        "num_skip": pa.array([0, 2, 3, None, 1, 2], pa.int32()),
        "method": pa.array(["darts", None, "pcdarts", "darts", "sdarts", "dar.ts"], pa.string()),
        "connected": pa.array([True, None, False, True, True, False], pa.bool_()),
        "value": pa.array([0.1, float("nan"), None, 2.0, -0.5, 0.3], pa.float64()),
        "alpha": pa.array([0.1, 0.2, None, float("nan"), 0.30000001, -1.0], pa.float32()),
        "curve": pa.array([[1.0], None, [], [2.0], [0.5], None], pa.list_(pa.float64())),
    })


# (filter, the pandas mask a user would write for it); missing values are NaN/None in the frame, as
# DataFrame.eval saw them: a comparison with one is false, except != (true)
EQUIVALENT = [
    ("seed > 0", lambda f: f.seed > 0),
    ("seed >= 1", lambda f: f.seed >= 1),
    ("seed < 3", lambda f: f.seed < 3),
    ("seed <= 3", lambda f: f.seed <= 3),
    ("seed == 1", lambda f: f.seed == 1),
    ("seed != 1", lambda f: f.seed != 1),
    ("0 < seed", lambda f: 0 < f.seed),
    ("3 >= seed", lambda f: 3 >= f.seed),
    ("0 < seed <= 3", lambda f: (0 < f.seed) & (f.seed <= 3)),
    ("seed > -1", lambda f: f.seed > -1),
    ("seed == -2", lambda f: f.seed == -2),
    ("seed > 0.5", lambda f: f.seed > 0.5),
    ("value > 0.1", lambda f: f.value > 0.1),
    ("value != 0.1", lambda f: f.value != 0.1),
    ("alpha > 0.1", lambda f: f.alpha > 0.1),
    ("alpha == 0.30000001", lambda f: f.alpha == 0.30000001),
    ("value < seed", lambda f: f.value < f.seed),
    ("num_skip != seed", lambda f: f.num_skip != f.seed),
    ("method == 'darts'", lambda f: f.method == "darts"),
    ('method != "darts"', lambda f: f.method != "darts"),
    ("method < 'e'", lambda f: f.method < "e"),
    ("connected", lambda f: f.connected.fillna(False).astype(bool)),
    ("connected == True", lambda f: f.connected == True),  # noqa: E712 - the pandas spelling
    ("connected != True", lambda f: f.connected != True),  # noqa: E712
    ("not connected", lambda f: ~f.connected.fillna(False).astype(bool)),
    ("~connected", lambda f: ~f.connected.fillna(False).astype(bool)),
    ("seed > 0 and num_skip <= 2", lambda f: (f.seed > 0) & (f.num_skip <= 2)),
    ("seed > 0 or method == 'pcdarts'", lambda f: (f.seed > 0) | (f.method == "pcdarts")),
    ("seed > 0 & num_skip <= 2", lambda f: (f.seed > 0) & (f.num_skip <= 2)),
    ("seed > 0 | num_skip == 3", lambda f: (f.seed > 0) | (f.num_skip == 3)),
    ("(seed > 0) & (num_skip <= 2)", lambda f: (f.seed > 0) & (f.num_skip <= 2)),
    ("~(seed > 0) | connected", lambda f: ~(f.seed > 0) | f.connected.fillna(False).astype(bool)),
    ("not (seed > 0 and connected)", lambda f: ~((f.seed > 0) & f.connected.fillna(False).astype(bool))),
    ("seed in [1, 3, 99]", lambda f: f.seed.isin([1, 3, 99])),
    ("seed not in (1, 3)", lambda f: ~f.seed.isin([1, 3])),
    ("method in ['darts', 'sdarts']", lambda f: f.method.isin(["darts", "sdarts"])),
    ("method in ['darts', None]", lambda f: f.method.isin(["darts", None])),
    ("seed == [0, 50]", lambda f: f.seed.isin([0, 50])),
    ("seed != [0, 50]", lambda f: ~f.seed.isin([0, 50])),
    ("seed.isin([0, 50])", lambda f: f.seed.isin([0, 50])),
    ("method.isin([])", lambda f: f.method.isin([])),
    ("seed.between(0, 3)", lambda f: f.seed.between(0, 3)),
    ("value.between(-0.5, 0.3, inclusive='neither')", lambda f: f.value.between(-0.5, 0.3, inclusive="neither")),
    ("seed.between(0, 3, inclusive='left')", lambda f: f.seed.between(0, 3, inclusive="left")),
    ("seed.isnull()", lambda f: f.seed.isnull()),
    ("value.isna()", lambda f: f.value.isna()),
    ("value.notnull()", lambda f: f.value.notnull()),
    ("method.notna()", lambda f: f.method.notna()),
    ("curve.isnull()", lambda f: f.curve.isnull()),
    ("value == None", lambda f: f.value.isnull()),
    ("method != None", lambda f: f.method.notnull()),
    ("method.str.contains('dar')", lambda f: f.method.str.contains("dar").fillna(False).astype(bool)),
    ("method.str.contains('^d.r')", lambda f: f.method.str.contains("^d.r").fillna(False).astype(bool)),
    ("method.str.contains('.', regex=False)",
     lambda f: f.method.str.contains(".", regex=False).fillna(False).astype(bool)),
    ("method.str.contains('DARTS', case=False)",
     lambda f: f.method.str.contains("DARTS", case=False).fillna(False).astype(bool)),
    ("method.str.startswith('pc')", lambda f: f.method.str.startswith("pc").fillna(False).astype(bool)),
    ("method.str.endswith('darts')", lambda f: f.method.str.endswith("darts").fillna(False).astype(bool)),
    ("`seed` > 0 and `method` == 'darts'", lambda f: (f.seed > 0) & (f.method == "darts")),
]


@pytest.mark.parametrize("expression, pandas_mask", EQUIVALENT, ids=[e for e, _ in EQUIVALENT])
def test_each_construct_keeps_the_rows_of_the_pandas_mask(expression, pandas_mask):
    table = _typed_table().append_column("row", pa.array(range(6)))
    frame = table.to_pandas()
    expected = frame["row"][pandas_mask(frame).to_numpy(dtype=bool)].tolist()
    kept = filter_table(table, expression)
    assert kept["row"].to_pylist() == expected
    assert kept.schema == table.schema  # the Arrow types survive the filter


def test_the_fixture_makes_the_equivalence_checks_discriminate():
    """Each pandas mask keeps some rows and drops some for most filters: the comparison above means something."""
    frame = _typed_table().to_pandas()
    proper = [e for e, mask in EQUIVALENT if 0 < int(mask(frame).to_numpy(dtype=bool).sum()) < len(frame)]
    assert len(proper) >= len(EQUIVALENT) - 2, sorted({e for e, _ in EQUIVALENT} - set(proper))


# (filter, a fragment of the one-line message): each names what is not allowed
REFUSED = [
    ("@frame.eval.__globals__['sys'].modules['os'].system('touch PWNED') == 0", "@ (local variables) is not allowed"),
    ("__import__('os').system('touch PWNED') == 0", "a call as a compared value not allowed"),
    ("__import__('os').system('touch PWNED')", "method .system() not allowed"),
    ("frame.eval(\"__import__('os').system('touch PWNED')\")", "method .eval() not allowed"),
    ("seed.__class__.__mro__ == 1", "attribute .__mro__ not allowed"),
    ("@x > 0", "@ (local variables) is not allowed"),
    ("seed[0] > 1", "subscripts (x[...]) not allowed"),
    ("(lambda: __import__('os').system('touch PWNED'))() == 0", "a call as a compared value not allowed"),
    ("(lambda: 1)", "lambda not allowed"),
    ("[x for x in seed] == [1]", "comprehensions not allowed"),
    ("f'{seed}' == '1'", "f-strings not allowed"),
    ("seed + 1 > 2", "arithmetic not allowed"),
    ("open('PWNED', 'w')", "calls other than the listed methods not allowed"),
    ("seed.map(print).any()", "method .any() not allowed"),
    ("seed if True else seed", "conditional expressions (x if c else y) not allowed"),
    ("seed is None", "'is' (for missing values: column == None, column.isnull()) not allowed"),
    ("sed > 1", "unknown column 'sed'; columns: seed, num_skip, method"),
    ("seed == 'a'", "does not compare with 'a' (string)"),
    ("curve > 1", "column 'curve' holds list values"),
    ("connected > True", "true/false columns only compare with == and !="),
    ("seed", "column 'seed' (int64) is not a true/false condition"),
    ("1 == 1", "compares two literals"),
    ("seed in seed", "'in' needs a column on the left and a list of literals"),
    ("seed.isin([1, 'a'])", "does not compare with 'a'"),
    ("method.str.contains('(?<=d)a')", "Invalid regular expression"),
    ("seed >", "not a valid expression"),
    ("`seed", "a backtick-quoted name has no closing `"),
    ("not " * (MAX_DEPTH + 1) + "connected", f"nested deeper than {MAX_DEPTH} levels"),
    ("~" * (MAX_LENGTH - 9) + "connected", f"nested deeper than {MAX_DEPTH} levels"),
    ("(" * 300 + "connected" + ")" * 300, "not a valid expression"),  # Python's parser: too many parentheses
    ("seed > 0 or " * 100 + "seed > 0", f"characters; at most {MAX_LENGTH}"),
]


@pytest.mark.parametrize("expression, fragment", REFUSED, ids=[e[:40] for e, _ in REFUSED])
def test_everything_else_is_a_one_line_error_naming_it(tmp_path, expression, fragment):
    target = tmp_path / "pwned"
    expression = expression.replace("PWNED", str(target))
    with pytest.raises(ResultsError) as info:
        filter_table(_typed_table(), expression)
    message = str(info.value)
    assert message.startswith("--where ") and "\n" not in message
    assert fragment in message, message
    if "not allowed" in fragment:
        assert message.endswith(f"allowed: {ALLOWED}")  # and lists what is
    assert not target.exists()


def test_at_signs_and_operators_inside_strings_are_text():
    table = pa.table({"note": ["a@b", "x|y&z", "`q`", None], "row": [0, 1, 2, 3]})
    assert filter_table(table, "note == 'a@b'")["row"].to_pylist() == [0]
    assert filter_table(table, 'note == "x|y&z" or note == \'`q`\'')["row"].to_pylist() == [1, 2]
    assert filter_table(table, "note.str.contains('|', regex=False)")["row"].to_pylist() == [1]


def test_backticks_name_columns_python_cannot():
    table = pa.table({"odd name": [1, 2, 3], "class": ["a", "b", "a"]})
    assert filter_table(table, "`odd name` >= 2 and `class` == 'a'")["odd name"].to_pylist() == [3]
    assert filter_table(table, "`odd name`.isin([1, 3])")["odd name"].to_pylist() == [1, 3]
    with pytest.raises(ResultsError, match=r"unknown column 'odd'; columns: odd name, class"):
        filter_table(table, "`odd` > 1")


def test_blank_filters_keep_every_row_and_non_strings_are_refused():
    table = _typed_table()
    assert filter_table(table, "  ") is table
    with pytest.raises(ResultsError, match="must be a string"):
        filter_table(table, 5)  # type: ignore[arg-type]


def test_an_empty_table_is_still_checked():
    empty = _typed_table().schema.empty_table()
    assert filter_table(empty, "seed > 0 and method.str.contains('d')").num_rows == 0
    with pytest.raises(ResultsError, match="unknown column 'sed'"):
        filter_table(empty, "sed > 0")


# -- a real experiment folder, the Python API and the CLI -------------------------------------------------------

SEEDS = (0, 1, 50, 51)
EPOCHS = (1, 2, 15, 50)


def _experiment(directory: Path) -> Path:
    """Four finished trials of four epochs each, as the Tune callback writes them, consolidated."""
    writer = ResultsWriter(directory, "exp")
    for seed in SEEDS:
        trial_id = f"t{seed}"
        rows = []
        for epoch in EPOCHS:
            report = make_report(epoch, seed, time_total_s=float(epoch), connected=epoch != 1)
            report["discretization_gap"] = report["val_acc"] - report["derived_val_acc"]  # a method metric (extra)
            writer.write_rows(trial_id, rows_from_report(trial_id, report))
            rows.append({"epoch": epoch, **report})
        writer.write_trial(summarise_trial(trial_id, rows, "derived_val_acc", "max", experiment="exp",
                                           status="TERMINATED", seed=seed, method="darts", space="nb201"))
    writer.consolidate()
    return directory


def _raynas(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raynas.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


EXPLOITS = [
    "@frame.eval.__globals__['sys'].modules['os'].system('touch {target}') == 0",
    "__import__('os').system('touch {target}') == 0",
    "frame.eval(\"__import__('os').system('touch {target}')\")",
    "@x == 0",
    "seed.__class__.__init__.__globals__['os'].system('touch {target}') == 0",
    "(lambda: __import__('os').system('touch {target}'))() == 0",
]


@pytest.mark.parametrize("exploit", EXPLOITS, ids=range(len(EXPLOITS)))
def test_the_cli_refuses_code_in_where_with_exit_2_and_runs_nothing(tmp_path, exploit):
    experiment = _experiment(tmp_path / "exp")
    target = tmp_path / "pwned"
    expression = exploit.format(target=target)
    for table in ([], ["--table", "epochs"]):
        run = _raynas("results", str(experiment), *table, "--where", expression)
        assert run.returncode == 2, run.stdout + run.stderr
        assert run.stdout == ""
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --where ") and "not allowed" in lines[0], run.stderr
        assert not target.exists()


def test_the_python_api_refuses_code_in_where(tmp_path):
    experiment = _experiment(tmp_path / "exp")
    target = tmp_path / "pwned"
    for exploit in EXPLOITS:
        expression = exploit.format(target=target)
        with pytest.raises(ResultsError, match="not allowed"):
            leaderboard(experiment, where=expression)
        with pytest.raises(ResultsError, match="not allowed"):
            load_table(experiment, "genotypes", where=expression, as_pandas=True)
    assert not target.exists()


def test_the_cli_filters_with_the_language(tmp_path):
    experiment = _experiment(tmp_path / "exp")
    run = _raynas("results", str(experiment), "--format", "csv", "--where",
                  "seed.isin([1, 50]) & genotype.str.contains('nor_conv_3x3', regex=False)", "--sort", "seed")
    assert run.returncode == 0, run.stderr
    rows = [line.split(",") for line in run.stdout.strip().splitlines()]
    seed_at = rows[0].index("seed")
    # make_report: the op is nor_conv_3x3 when seed + epoch is even; the best epoch is the last (50)
    assert [row[seed_at] for row in rows[1:]] == ["50"]


def _documented_filters() -> list[tuple[str, str, str]]:
    """(file:line, table or '' for the leaderboard, filter) of every ``--where`` / ``where=`` example in
    README.md and docs/*.md."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in re.finditer(r"""(?:--where\s+|where=)(["'])(.*?)\1""", line):
                table = (re.search(r"--table\s+(\w+)", line) or re.search(r'load_table\(\s*"[^"]*"\s*,\s*"(\w+)"', line)
                         or re.search(r'\.table\(\s*"(\w+)"', line))  # the Python API: experiment.table("epochs", ...)
                found.append((f"{path.name}:{number}", table.group(1) if table else "", match.group(2)))
    return found


def test_every_documented_filter_runs_on_a_real_experiment_and_matches_pandas(tmp_path):
    examples = _documented_filters()
    assert {"seed > 0 and num_skip <= 2", "epoch >= 15", "connected"} <= {e for _, _, e in examples}, examples
    experiment = _experiment(tmp_path / "exp")
    for place, table, expression in examples:
        if table:
            kept = load_table(experiment, table, where=expression)
            frame = load_table(experiment, table, as_pandas=True)
            keys = [k for k in ("trial_id", "epoch", "cell", "edge", "op") if k in frame.columns]
            expected = frame.query(expression)[keys].to_dict("records")  # pandas, on our own doc strings
            assert kept.select(keys).to_pylist() == expected, place
        else:
            kept = leaderboard(experiment, where=expression)
            trials = load_table(experiment, "trials", as_pandas=True)
            chosen = set(trials.query(expression)["trial_id"])
            assert kept["trial_id"].to_pylist() == [t for t in leaderboard(experiment)["trial_id"].to_pylist()
                                                    if t in chosen], place
        assert kept.num_rows > 0, f"{place}: {expression!r} keeps nothing of the test experiment"
