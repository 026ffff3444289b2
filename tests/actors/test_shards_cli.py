"""A sharded search end to end: the real ``raynas search`` CLI as a subprocess, two shard actors per trial."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from cli_helpers import LOOPBACK, run_watching_sockets  # noqa: E402

TINY = ("data.limit=128", "supernet.channels=4", "supernet.layers=1", "search.epochs=2", "search.batch_size=32")


@pytest.mark.slow  # moved from the default tier to keep it under 10 minutes; make test-all runs it
def test_sharded_search_via_cli_writes_complete_tables(tmp_path):
    overrides = [arg for key in TINY for arg in ("--set", key)]
    run = run_watching_sockets("search", "search_configs/shards_nb201.yaml", "--out", str(tmp_path),
                               "--set", "ray.num_cpus=3", *overrides, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "epoch   2/2" in run.stdout
    exp = tmp_path / "shards-nb201"
    tables = {name: pq.read_table(exp / "tables" / f"{name}.parquet")
              for name in ("trials", "epochs", "alphas", "genotypes")}
    assert tables["trials"].num_rows == 1
    assert tables["trials"].column("status").to_pylist() == ["TERMINATED"]
    assert tables["epochs"].column("epoch").to_pylist() == [1, 2]
    assert tables["genotypes"].num_rows == 2
    assert tables["alphas"].num_rows == 2 * 6 * 5  # epochs x edges x ops
    accuracies = tables["epochs"].column("val_acc").to_pylist()
    assert all(0.0 <= acc <= 1.0 for acc in accuracies)
    # the shards' rendezvous store and gloo bind to Ray's node address, which is loopback here
    assert run.listening and run.listening <= LOOPBACK, run.listening
