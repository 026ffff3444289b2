"""``--format`` is a checked choice in every command that has it (results, plot, report, export): shown in the
help, refused as a one-line usage error before the command reads or writes anything, case ignored."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import raynas  # noqa: E402

CHOICES = {"results": "[table|csv|json]", "plot": "[png|svg],...", "report": "[html|md]", "export": "[pt2|onnx],..."}


def test_the_cli_choices_are_the_libraries_formats():
    """The CLI writes them out (its --help imports none of the libraries): they must not drift apart."""
    from raynas import cli
    from raynas.export import EXPORT_FORMATS
    from raynas.plots.style import FORMATS
    from raynas.report.write import REPORT_FORMATS

    assert (cli.PLOT_FORMATS, cli.REPORT_FORMATS, cli.EXPORT_FORMATS) == (FORMATS, REPORT_FORMATS, EXPORT_FORMATS)


@pytest.mark.parametrize("command", sorted(CHOICES))
def test_the_help_shows_the_choices(command):
    result = raynas(command, "--help")
    assert result.returncode == 0 and f"--format {CHOICES[command]}" in result.stdout, result.stdout


@pytest.mark.parametrize(("command", "value", "message"), [
    ("results", "xml", "'xml' is not one of 'table', 'csv', 'json'"),
    ("plot", "png,jpg", "'jpg': not among png, svg (comma-separated)"),
    ("plot", ",", "',': give one or more of png, svg (comma-separated)"),
    ("report", "pdf", "'pdf' is not one of 'html', 'md'"),
    ("export", "tflite", "'tflite': not among pt2, onnx (comma-separated)"),
])
def test_an_unknown_format_is_one_line_before_anything_runs(command, value, message, tmp_path):
    (tmp_path / "config.yaml").write_text("name: x\n")  # a folder the command would otherwise read
    before = sorted(tmp_path.rglob("*"))
    result = raynas(command, str(tmp_path), "--format", value)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"error: Invalid value for '--format': {message}; see 'raynas {command} --help'\n"
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(("command", "value"), [("plot", "SVG,png,svg"), ("report", "MD")])
def test_case_is_ignored(command, value, tmp_path):
    """The format passes; the command goes on to the folder, which is not an experiment."""
    result = raynas(command, str(tmp_path), "--format", value)
    assert result.returncode == 2 and "--format" not in result.stderr, result.stderr
