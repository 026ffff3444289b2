"""Fault tolerance end to end, and checkpoint files that cannot be half written or unsafely loaded.

One search (real CLI, real local Ray, 2 CPUs, ``tune.max_failures: 1``) runs two trials: one whose
architecture learning rate makes it diverge at its first architecture step (epoch 3, after 2 warm-up
epochs), and a healthy one whose Ray worker process is SIGKILLed mid-run. The healthy trial is held after
epoch ``HELD`` (:mod:`raynas.tune.hold`) until the kill, so it is mid-run then by construction; the hold is
released right after the kill, so the retried trial does not stop at it again.
"""

from __future__ import annotations

import pickle
import re
import sys
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import BackgroundRun, Hold, busy_trial_workers  # noqa: E402

pytestmark = pytest.mark.slow  # moved from the default tier to keep it under 10 minutes; make test-all runs it

EPOCHS = 12
HELD = 4  # the healthy trial waits after this epoch until its worker is killed
HEALTHY, DIVERGING = "search.arch_lr=0.01", "search.arch_lr=1e+38"
LINE = re.compile(r"^\[(\S+) (search\.arch_lr=\S+)\] (.*)$", re.M)


def lines_of(text: str, label: str) -> list[str]:
    """The progress lines (without their prefix) of the trial labelled ``label``."""
    return [rest for _, lab, rest in LINE.findall(text) if lab == label]


def epochs_of(lines: list[str]) -> list[int]:
    return [int(m.group(1)) for m in (re.match(r"epoch +(\d+)/", line) for line in lines) if m]


def ready_to_kill(hold: Hold):
    def ready(run: BackgroundRun) -> bool:
        """The diverging trial has ended and the healthy one is held mid-run, alone at work."""
        done = "FAILED (diverged" in run.stdout
        return (done and max(epochs_of(lines_of(run.stdout, HEALTHY)), default=0) == HELD
                and list(hold.held().values()) == [HELD] and len(busy_trial_workers(run)) == 1)
    return ready


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    hold = Hold(out / "hold", HELD)
    args = ("search", "search_configs/smoke/nb201.yaml", "--out", str(out), "--set", "name=faults",
            "--set", "ray.num_cpus=2", "--set", "data.limit=128", "--set", f"search.epochs={EPOCHS}",
            "--set", "search.warmup_epochs=2", "--set", 'tune.grid={"search.arch_lr": [0.01, 1.0e38]}',
            "--set", "tune.max_failures=1")
    with BackgroundRun(*args, hold=hold) as run:
        run.wait_until(ready_to_kill(hold))
        killed_at = max(epochs_of(lines_of(run.stdout, HEALTHY)))
        busy_trial_workers(run)[0].kill()
        hold.release()  # the retry may restore the checkpoint before the hold's epoch: let it through
        code = run.wait(timeout=300)
        stdout, stderr = run.stdout, run.stderr
    ids = {lab: trial for trial, lab, _ in LINE.findall(stdout)}
    return {"code": code, "stdout": stdout, "stderr": stderr, "exp": out / "faults", "killed_at": killed_at,
            "ids": ids}


def test_search_exits_1_and_names_the_failed_trial_and_why(faults):
    assert faults["code"] == 1, faults["stderr"][-3000:]
    diverged = faults["ids"][DIVERGING]
    assert "1 of 2 trial(s) failed" in faults["stdout"]
    assert re.search(rf"^  {diverged} FAILED: \w+ loss is nan at epoch 3 step \d+: the search diverged",
                     faults["stdout"], re.M), faults["stdout"][-2000:]


def test_killed_worker_is_retried_from_its_checkpoint(faults):
    healthy = lines_of(faults["stdout"], HEALTHY)
    retry = [i for i, line in enumerate(healthy) if "lost its process; retrying" in line]
    assert len(retry) == 1, healthy
    before, after = epochs_of(healthy[:retry[0]]), epochs_of(healthy[retry[0] + 1:])
    assert max(before) >= faults["killed_at"]  # the kill came mid-run, after these reports
    assert after and 1 < after[0] <= max(before) + 1, (before, after)  # from a checkpoint, none skipped
    assert healthy[-1].startswith("finished: ")


def test_divergence_is_not_retried(faults):
    diverging = lines_of(faults["stdout"], DIVERGING)
    assert sum(line.startswith("DIVERGED: ") for line in diverging) == 1
    assert not [line for line in diverging if "retrying" in line]
    assert epochs_of(diverging) == [1, 2]
    # Tune recorded no failure for it (no error.txt), but one for the killed worker.
    def trial_dir(trial_id: str) -> Path:
        return next(d for d in (faults["exp"] / "tune").iterdir() if f"_{trial_id}_" in d.name)

    assert not (trial_dir(faults["ids"][DIVERGING]) / "error.txt").exists()
    assert (trial_dir(faults["ids"][HEALTHY]) / "error.txt").exists()


def test_trials_table_records_status_and_reason(faults):
    rows = {r["trial_id"]: r for r in pq.read_table(faults["exp"] / "tables" / "trials.parquet").to_pylist()}
    healthy, diverged = rows[faults["ids"][HEALTHY]], rows[faults["ids"][DIVERGING]]
    assert (healthy["status"], healthy["epochs_done"], healthy["error"]) == ("TERMINATED", EPOCHS, None)
    assert diverged["status"] == "ERROR" and diverged["epochs_done"] == 2
    assert "loss is nan at epoch 3" in diverged["error"] and "\n" not in diverged["error"]


def test_tables_complete_and_duplicate_free_after_the_retry(faults):
    ids = faults["ids"]
    expected = {(ids[HEALTHY], e) for e in range(1, EPOCHS + 1)} | {(ids[DIVERGING], e) for e in (1, 2)}
    for name in ("epochs", "genotypes"):
        table = pq.read_table(faults["exp"] / "tables" / f"{name}.parquet")
        keys = list(zip(table.column("trial_id").to_pylist(), table.column("epoch").to_pylist()))
        assert len(keys) == len(set(keys)) and set(keys) == expected, name


# ----------------------------------------------------------------------- checkpoint files (no Ray)
@pytest.fixture(scope="module")
def search_state():
    from raynas.config import load_config
    from raynas.search import Search

    cfg = load_config("search_configs/smoke/nb201.yaml", ["data.limit=64", "search.epochs=1", "search.threads=1"])
    search = Search(cfg)
    search.run_epoch()
    return search.get_state()


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_a_torn_state_file_is_not_loaded_as_a_state(tmp_path, search_state, keep):
    from raynas.runtime import load_state, save_state
    from raynas.tune.trainable import STATE_FILE

    path = tmp_path / STATE_FILE
    save_state(search_state, str(path))
    assert load_state(str(path))["epoch"] == 1
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])  # what a crash in the middle of a plain write leaves
    with pytest.raises((RuntimeError, OSError, EOFError, pickle.UnpicklingError)):
        load_state(str(path))


def test_an_interrupted_save_leaves_the_previous_state(tmp_path, search_state):
    import torch

    from raynas.runtime import load_state, save_state

    path = tmp_path / "state.pt"
    save_state(search_state, str(path))
    broken = {**search_state, "epoch": 2, "unpicklable": lambda: None}  # fails halfway through writing
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save_state(broken, str(path))
    state = load_state(str(path))
    assert state["epoch"] == 1
    assert all(torch.equal(state["model"][k], v) for k, v in search_state["model"].items())
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]  # no temp file left behind


def test_state_files_are_loaded_without_arbitrary_unpickling(tmp_path):
    import torch

    from raynas.runtime import load_state

    path = tmp_path / "state.pt"
    torch.save({"epoch": 1, "payload": psutil.Process}, path)  # a class: code a pickle may run
    with pytest.raises(pickle.UnpicklingError):
        load_state(str(path))
