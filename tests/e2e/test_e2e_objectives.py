"""End to end: the objective smoke configs through the real CLI (real local Ray, 2 CPUs, real Parquet).

SD-DARTS with its teachers in a Ray actor runs as a Tune trial whose placement group holds the teacher's
bundle; NA-RS (random search scored by neighbourhoods) runs its sampling stage. Their metrics and decisions
land in the tables.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import raynas  # noqa: E402

pytestmark = pytest.mark.slow  # two CLI runs (about 40 s here): make test-all runs them


def extras(exp: Path) -> list[dict]:
    """The epochs table's ``extra`` maps, in epoch order."""
    table = pq.read_table(exp / "tables" / "epochs.parquet").sort_by("epoch")
    return [dict(pairs) for pairs in table.column("extra").to_pylist()]


def test_sd_with_actor_teachers_through_the_cli(tmp_path):
    run = raynas("search", "search_configs/smoke/sd.yaml", "--out", str(tmp_path), "--set", "ray.num_cpus=2")
    assert run.returncode == 0, run.stderr[-3000:]
    rows = extras(tmp_path / "smoke-sd")
    assert len(rows) == 2
    assert rows[-1]["sd_teachers"] == 2 and rows[-1]["sd_kl"] > 0 and rows[-1]["sd_wait_s"] >= 0
    assert all("discretization_gap" in row for row in rows)


def test_na_rs_through_the_cli(tmp_path):
    run = raynas("search", "search_configs/smoke/na_rs.yaml", "--out", str(tmp_path), "--set", "ray.num_cpus=2")
    assert run.returncode == 0, run.stderr[-3000:]
    exp = tmp_path / "smoke-na-rs"
    decisions = pq.read_table(exp / "tables" / "decisions.parquet").to_pylist()
    assert sum(r["kind"] == "sample" for r in decisions) == 6
    assert sum(r["kind"] == "neighbor" for r in decisions) == 6 * 2
    scores = [r for r in decisions if r["kind"] == "score"]
    kept = [r for r in scores if r["decision"] == "keep"]
    assert len(scores) == 6 and len(kept) == 1
    assert kept[0]["acc"] == max(r["acc"] for r in scores)
    trial = pq.read_table(exp / "tables" / "trials.parquet").to_pylist()[0]
    assert trial["genotype"] == kept[0]["op"]  # the winner is the trial's final architecture
