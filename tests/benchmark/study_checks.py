"""Checks shared by the tests of the study tools (tools/league.py, tools/spaces_pt_study.py): their output
read back, and the 95 % t interval they must match, computed with scipy."""

from __future__ import annotations

import json
import math
import statistics
import subprocess


def figures(run: subprocess.CompletedProcess) -> tuple[str, dict]:
    """The Markdown table and the ``--json`` figures a tool printed (it must have exited 0)."""
    assert run.returncode == 0, run.stderr
    table, _, rest = run.stdout.partition("\n{")
    return table, json.loads("{" + rest)


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % Student t interval of ``values`` by scipy."""
    from scipy.stats import t

    n = len(values)
    mean = sum(values) / n
    half = float(t.ppf(0.975, n - 1)) * statistics.stdev(values) / math.sqrt(n)
    return mean, mean - half, mean + half
