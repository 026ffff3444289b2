"""``raynas resume`` checks a folder before it loads anything from it, and ``--address`` is probed before
anything is written (real CLI as a subprocess; no Ray is started: every case ends before that).

- A folder others could have written (or that belongs to someone else) is refused: its planted pickles,
  which would create a marker folder when unpickled, are never loaded.
- A folder whose lock a live process holds is refused, naming that process.
- A settings file changed since the run started is refused, naming the keys.
- An address where no Ray cluster answers is one line, and no folder is created.

Each holds for the three folder kinds: a search, an evaluation run (``raynas train``) and a benchmark build.
The same with real drivers (search, resume, train, bench build, killed and resumed) is in
test_e2e_folder_guard_runs.py.
"""

from __future__ import annotations

import os
import pickle
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import ROOT, cli_env, raynas  # noqa: E402

from raynas.config_fingerprint import record_fingerprint  # noqa: E402
from raynas.folder_lock import LOCK_FILE  # noqa: E402

SMOKE = ROOT / "search_configs" / "smoke" / "nb201.yaml"
CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
KINDS = ["search", "train", "build"]
SETTINGS = {"search": "config.yaml", "train": "evaluation.yaml", "build": "benchmark.yaml"}
# one edit per kind: (old text, new text, the key and values the refusal names)
EDITS = {"search": [("arch_lr: 0.01", "arch_lr: 0.3", "search.arch_lr 0.01 -> 0.3"),
                    ("noise_std: 0.5", "noise_std: 0.0", "data.noise_std 0.5 -> 0.0")],
         "train": [("seeds:\n- 0", "seeds:\n- 5", "seeds [0] -> [5]")],
         "build": [("  lr: 0.05", "  lr: 0.5", "protocol.lr 0.05 -> 0.5")]}


def make_folder(kind: str, parent: Path) -> Path:
    """A folder of ``kind`` as its run leaves it before Tune starts: settings file and fingerprint."""
    if kind == "search":
        folder = parent / "exp"
        folder.mkdir()
        shutil.copy(SMOKE, folder / "config.yaml")
    elif kind == "train":
        from raynas.evaluation.plan import plan_evaluation, write_plan

        prepared = plan_evaluation([CONV], out=parent, name="run")
        folder = prepared.directory
        folder.mkdir()
        write_plan(prepared.plan, folder)
    else:
        from raynas.benchmark.build import prepare_build, write_plan
        from raynas.benchmark.protocol import shipped_protocol

        plan, folder = prepare_build(name="b", out=parent, protocol=shipped_protocol(), seeds=[0], cells=2)
        folder.mkdir()
        write_plan(plan, folder)
    record_fingerprint(folder, SETTINGS[kind])
    return folder


class Planted:
    """Unpickling this makes the folder ``path``: what planted code could do, made visible."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def plant(folder: Path, marker: Path) -> None:
    """Ray Tune's saved state as a planter would leave it: tuner.pkl and a state file whose trial payload is
    cloudpickled (Tune decodes both when it restores)."""
    tune = folder / "tune"
    tune.mkdir()
    (tune / "tuner.pkl").write_bytes(pickle.dumps(Planted(marker)))
    payload = pickle.dumps(Planted(marker)).hex()
    (tune / "experiment_state-2025-01-01_00-00-00.json").write_text(
        '{"trial_data": [["{\\"_type\\": \\"CLOUDPICKLE_FALLBACK\\", \\"value\\": \\"%s\\"}", "{}"]], '
        '"runner_data": {}, "stats": {}}' % payload)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    return lines[0]


# ------------------------------------------------------------------------------------------ trust
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("damage", ["group-writable pickle", "world-writable tune", "owned by another user"])
def test_a_folder_others_could_write_is_refused_before_its_pickles_load(tmp_path, kind, damage):
    if damage == "owned by another user" and os.geteuid() != 0:
        pytest.skip("making a file owned by another user needs root")
    folder = make_folder(kind, tmp_path)
    marker = tmp_path / "planted-code-ran"
    plant(folder, marker)
    target = {"group-writable pickle": folder / "tune" / "tuner.pkl", "world-writable tune": folder / "tune",
              "owned by another user": folder / "tune" / "tuner.pkl"}[damage]
    if damage == "owned by another user":
        os.chown(target, 54321, -1)
    else:
        os.chmod(target, target.stat().st_mode | (0o020 if "group" in damage else 0o002))
    before = snapshot(folder)
    error = one_line_error(raynas("resume", str(folder)))
    assert " is not safe to resume: " in error and f"{target} " in error and "trusted like code" in error
    assert ("belongs to uid 54321" if "another user" in damage else "is writable by") in error
    assert not marker.exists()  # nothing was unpickled
    assert snapshot(folder) == before and not (folder / LOCK_FILE).exists()  # nothing written, not even the lock


# ------------------------------------------------------------------------------------------ lock
HOLDER = """
import sys
from raynas.folder_lock import folder_lock
with folder_lock(sys.argv[1], "raynas search"):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.mark.parametrize("kind", KINDS)
def test_a_folder_a_live_process_holds_is_refused_naming_it(tmp_path, kind):
    folder = make_folder(kind, tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline() == "locked\n"  # it holds the lock from here until its stdin closes
        error = one_line_error(raynas("resume", str(folder)))
        assert f"'{folder}' is in use: raynas search (pid {holder.pid} on host {socket.gethostname()}" in error
    finally:
        holder.stdin.close()
        holder.wait()


# ------------------------------------------------------------------------------------------ settings
@pytest.mark.parametrize("kind", KINDS)
def test_a_changed_settings_file_is_refused_naming_the_keys(tmp_path, kind):
    folder = make_folder(kind, tmp_path)
    path = folder / SETTINGS[kind]
    text = path.read_text()
    for old, new, _ in EDITS[kind]:
        assert old in text, (old, text)
        text = text.replace(old, new)
    path.write_text(text)
    before = snapshot(folder)
    result = raynas("resume", str(folder))
    error = one_line_error(result)
    assert f"cannot be resumed as it is: its {SETTINGS[kind]} changed since the run started (" in error
    for _, _, named in EDITS[kind]:
        assert named in error
    assert "--accept-config-change" in error
    assert snapshot(folder) == {**before, LOCK_FILE: b""}  # only the lock file, released


# ------------------------------------------------------------------------------------------ --address
COMMANDS = {"search": ["search", str(SMOKE)],
            "train": ["train", CONV, "--epochs", "1", "--name", "run"],
            "build": ["bench", "build", "--cells", "2", "--name", "b"]}


@pytest.mark.parametrize("kind", KINDS)
def test_an_address_where_no_ray_answers_is_one_line_and_writes_nothing(tmp_path, kind):
    out = tmp_path / "out"
    error = one_line_error(raynas(*COMMANDS[kind], "--out", str(out), "--address", "127.0.0.1:1"))
    assert error.startswith("error: --address = 127.0.0.1:1: no Ray cluster answers (Connection refused)")
    assert not out.exists()


def test_a_listener_that_is_not_ray_is_refused_within_the_configured_wait(tmp_path):
    out = tmp_path / "out"
    with socket.socket() as server:  # accepts (the kernel does) and never answers
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "raynas.cli", "search", str(SMOKE), "--out", str(out),
                                 "--address", f"127.0.0.1:{port}"], cwd=ROOT, capture_output=True, text=True,
                                env={**cli_env(), "RAYNAS_CONNECT_TIMEOUT_S": "1"}, timeout=120)
    error = one_line_error(result)
    assert f"127.0.0.1:{port}: something listens there but it is not a Ray cluster" in error
    assert "no answer within 1 s" in error and not out.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_resume_with_an_address_where_no_ray_answers_writes_nothing(tmp_path, kind):
    folder = make_folder(kind, tmp_path)
    before = snapshot(folder)
    error = one_line_error(raynas("resume", str(folder), "--address", "127.0.0.1:1"))
    assert "no Ray cluster answers" in error
    assert snapshot(folder) == before and not (folder / LOCK_FILE).exists()
