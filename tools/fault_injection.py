#!/usr/bin/env python3
"""Fault injection for ``raynas resume``: seeded kills and damaged folders, each resumed and checked.

Runs ``--cases`` seeded fault cases (default 20) against the real CLI, each in its own folder under
``--out``, on small configs: an NB201 search on digits (``search_configs/smoke/nb201.yaml``: 2 trials of
``--epochs`` epochs) and ``raynas train`` of two NB201 genotypes (1 seed each, ``--epochs`` epochs). Each
case picks, from ``--seed`` and its index, a command and a fault (the 9 pairs are dealt out in shuffled
rounds, so 9 or more cases cover all of them):

* commands: ``search`` (the search is killed), ``resume`` (the search is killed, then its resume is killed
  too), ``train`` (the training run is killed); in about a third of the cases the next resume is killed once
  more;
* faults: ``kill`` (SIGKILL only), ``torn-part`` (after the last kill, a random result part
  ``tables/parts/**.parquet`` is truncated), ``torn-checkpoint`` (after the last kill, a random file of the
  latest checkpoint of a random trial, the one Tune's saved state restores it from, is truncated; the newest
  checkpoint folder when the state names none).

A kill is SIGKILL of the driver and of every Ray process it started (raylet, GCS, workers, ...), as a reboot
would: each CLI process starts in its own session (``start_new_session``) with its own Ray temp folder
(``RAYNAS_RAY_TEMP_DIR``), so its Ray processes are exactly the members of that session (Ray keeps its
processes in the driver's session) and those naming the temp folder; nothing else on the machine is
touched. A driver is killed once it has printed its k-th epoch line (k drawn from the case's seed as a
fraction of the epochs not yet printed; k = 0: right after its header line, before any epoch), so the kill
point depends on the run's progress rather than on the machine's speed.

After the planned kills (and the fault), ``raynas resume DIR`` runs to the end; if it exits non-zero, one
more plain ``raynas resume DIR`` runs. A case *needed a person* when that second resume exits non-zero too
(or a run outlives ``--timeout``): nothing here ever deletes, moves or edits a file to help a resume.
The finished folder's tables are then compared with an uninterrupted reference run of the same config
(run once, first): rows lost, rows duplicated, rows differing (``tools/fault_tables.py``).

Prints one line per case and a summary table; writes ``summary.json`` and ``summary.md`` to ``--out``
(every case's folder and the output of each of its processes stay there).

    python tools/fault_injection.py [--seed 0] [--cases 20] [--out DIR] [--num-cpus 2] [--epochs 6]
                                    [--timeout 600]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fault_tables import TableCheck, check_tables  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEARCH_CONFIG = ROOT / "search_configs" / "smoke" / "nb201.yaml"  # 2 trials (seeds 0, 1) on 256 noisy digits
GENOTYPES = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
             "|avg_pool_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|")
COMMANDS = ("search", "resume", "train")
FAULTS = ("kill", "torn-part", "torn-checkpoint")
EPOCH_LINE = re.compile(r"^\[(\S+) [^\]]*\] epoch +(\d+)/\d+", re.M)
HEADER_LINE = re.compile(r"^raynas: (\d+ trial\(s\) of |training |resuming )", re.M)
POLL_S = 0.05  # how often a driver's output is read while waiting for its kill point


@dataclass(frozen=True)
class Workload:
    """A small run of one kind (``search`` or ``train``): its command line and how many epoch lines it prints."""

    kind: str
    epochs: int
    num_cpus: int

    @property
    def folder(self) -> str:
        """The run folder's name under the case folder."""
        return self.kind

    @property
    def lines_total(self) -> int:
        """Epoch lines of an uninterrupted run: 2 trials x ``epochs``."""
        return 2 * self.epochs

    def start_args(self, parent: Path) -> list[str]:
        """The ``raynas`` arguments that start the run in ``parent/<folder>``."""
        if self.kind == "search":
            return ["search", str(SEARCH_CONFIG), "--out", str(parent), "--set", f"name={self.folder}",
                    "--set", f"ray.num_cpus={self.num_cpus}", "--set", f"search.epochs={self.epochs}"]
        return ["train", *GENOTYPES, "--epochs", str(self.epochs), "--set", "channels=8", "--set", "layers=1",
                "--set", "batch_size=32", "--out", str(parent), "--name", self.folder,
                "--num-cpus", str(self.num_cpus)]


@dataclass(frozen=True)
class CasePlan:
    """What one case does, drawn from the tool's seed before anything runs."""

    index: int
    command: str  # search | resume | train
    fault: str  # kill | torn-part | torn-checkpoint
    kill_fractions: tuple[float, ...]  # one per killed driver (the command, then resumes): where it is killed
    tear_seed: int  # chooses the file a torn-* fault truncates, and how much of it is kept

    @property
    def kind(self) -> str:
        """The workload the case runs: ``train`` or ``search``."""
        return "train" if self.command == "train" else "search"


def plan_cases(seed: int, cases: int) -> list[CasePlan]:
    """``cases`` plans from ``seed``: (command, fault) pairs dealt in shuffled rounds of all 9."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    while len(pairs) < cases:
        round_ = [(command, fault) for command in COMMANDS for fault in FAULTS]
        rng.shuffle(round_)
        pairs.extend(round_)
    plans = []
    for index, (command, fault) in enumerate(pairs[:cases]):
        kills = (2 if command == "resume" else 1) + (rng.random() < 1 / 3)  # sometimes the next resume too
        plans.append(CasePlan(index, command, fault, tuple(rng.random() for _ in range(kills)),
                              rng.randrange(2 ** 31)))
    return plans


@dataclass
class Step:
    """One CLI process of a case."""

    args: list[str]
    exit_code: Optional[int] = None
    kill_after: Optional[int] = None  # planned: killed after this many epoch lines (0: after the header)
    killed: bool = False  # the kill happened (the run had not ended before its kill point)
    timed_out: bool = False
    epoch_lines: int = 0
    seconds: float = 0.0
    error: str = ""  # its last stderr line starting with 'error:'
    log: str = ""  # where its stdout/stderr are

    def describe(self) -> str:
        """``search killed after 3`` / ``resume exit 0``."""
        what = self.args[0]
        if self.killed:
            return f"{what} killed after {self.kill_after}"
        return f"{what} {'timed out' if self.timed_out else f'exit {self.exit_code}'}"


def session_processes(sid: int, ray_temp: str) -> list[psutil.Process]:
    """The live processes of session ``sid`` and those whose command line names ``ray_temp`` (zombies left out)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                continue
            if os.getsid(proc.pid) == sid or ray_temp in " ".join(proc.info["cmdline"] or ()):
                found.append(proc)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return found


def kill_everything(proc: subprocess.Popen, ray_temp: str) -> None:
    """SIGKILL the driver, then every process of its session or its Ray temp folder, until none is left."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for _ in range(100):  # a raylet may be starting a worker while we kill: go round until nothing is left
        procs = session_processes(proc.pid, ray_temp)
        if not procs:
            return
        for member in procs:
            try:
                member.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=5)
    raise RuntimeError(f"processes of session {proc.pid} outlived 100 rounds of SIGKILL")


def epoch_keys(text: str) -> set[tuple[str, int]]:
    """(trial id, epoch) of every epoch line in ``text``."""
    return {(trial, int(epoch)) for trial, epoch in EPOCH_LINE.findall(text)}


def run_cli(args: list[str], log: Path, kill_after: Optional[int], timeout: float) -> tuple[Step, str]:
    """Run ``raynas ARGS`` in its own session and Ray temp folder, killed after ``kill_after`` epoch lines
    (None: left to end); returns the step and its stdout."""
    step = Step(list(args), kill_after=kill_after, log=str(log))
    ray_temp = tempfile.mkdtemp(prefix="rnfi")  # short: Ray's socket paths must stay under 108 bytes
    env = {**os.environ, "RAYNAS_RAY_TEMP_DIR": ray_temp, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    env.setdefault("RAY_worker_niceness", "0")  # as the tests: at Ray's default 15 a busy machine starves them
    out_path, err_path = log.with_suffix(".out"), log.with_suffix(".err")
    start = time.monotonic()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "raynas.cli", *args], cwd=ROOT, env=env, stdout=out,
                                stderr=err, start_new_session=True)
    try:
        while True:
            ended = proc.poll() is not None
            text = out_path.read_text(errors="replace")
            step.epoch_lines = len(EPOCH_LINE.findall(text))
            if kill_after is not None and not ended and HEADER_LINE.search(text) and step.epoch_lines >= kill_after:
                step.killed = True
                break
            if ended:
                break
            if time.monotonic() - start > timeout:
                step.timed_out = True
                break
            time.sleep(POLL_S)  # polling the output file for the kill point, bounded by the timeout
    finally:
        kill_everything(proc, ray_temp)  # also what a run that ended by itself may have left behind
        subprocess.run(["rm", "-rf", ray_temp], check=False)
    step.seconds = round(time.monotonic() - start, 1)
    step.exit_code = None if step.killed or step.timed_out else proc.returncode
    text = out_path.read_text(errors="replace")
    step.epoch_lines = len(EPOCH_LINE.findall(text))
    errors = [line for line in err_path.read_text(errors="replace").splitlines() if line.startswith("error:")]
    step.error = errors[-1][:300] if errors else ""
    return step, text


def _truncate(path: Path, rng: random.Random) -> str:
    size = path.stat().st_size
    keep = int(size * rng.uniform(0.1, 0.9))
    with open(path, "r+b") as handle:
        handle.truncate(keep)
    return f"{size} -> {keep} bytes"


def tear(fault: str, run_dir: Path, rng: random.Random) -> str:
    """Apply a torn-* ``fault`` to ``run_dir`` (after its last kill); what was done, in words."""
    if fault == "torn-part":
        parts = sorted((run_dir / "tables" / "parts").rglob("*.parquet"))
        if not parts:
            return "no result part to tear"
        part = rng.choice(parts)
        return f"tore {part.relative_to(run_dir)} ({_truncate(part, rng)})"
    if fault == "torn-checkpoint":
        folder = latest_checkpoint(run_dir / "tune", rng)
        if folder is None:
            return "no checkpoint to tear"
        files = sorted(f for f in folder.rglob("*") if f.is_file() and f.stat().st_size)
        if not files:
            return f"no file to tear in {folder.relative_to(run_dir)}"
        target = rng.choice(files)
        return f"tore {target.relative_to(run_dir)} ({_truncate(target, rng)})"
    return ""


def latest_checkpoint(tune_dir: Path, rng: random.Random) -> Optional[Path]:
    """The checkpoint folder Tune's saved state restores a random trial from (what a resume loads); the newest
    checkpoint folder when the state names none; None without checkpoints."""
    from raynas.tune.retention import saved_checkpoints

    named = []
    for trial_id, index in sorted((saved_checkpoints(tune_dir) or {}).items()):
        named += [folder for folder in tune_dir.glob(f"*{trial_id}*/checkpoint_{index:06d}") if folder.is_dir()]
    if named:
        return rng.choice(named)
    folders = [d for d in tune_dir.glob("*/checkpoint_*") if d.is_dir()]
    return max(folders, key=lambda d: (d.stat().st_mtime_ns, d.name)) if folders else None


@dataclass
class CaseResult:
    """What a case did and found."""

    plan: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    fault: str = ""
    resumes: int = 0
    needed_person: bool = False
    tables: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def run_case(plan: CasePlan, workload: Workload, case_dir: Path, reference_dir: Path, timeout: float) -> CaseResult:
    """Run one case: the planned kills, its fault, the resume(s); then check the tables against the reference."""
    start = time.monotonic()
    case_dir.mkdir(parents=True)
    run_dir = case_dir / workload.folder
    result = CaseResult(plan=asdict(plan))
    printed: set[tuple[str, int]] = set()

    def step(args: list[str], kill_after: Optional[int]) -> Step:
        done, text = run_cli(args, case_dir / f"{len(result.steps) + 1:02d}-{args[0]}", kill_after, timeout)
        printed.update(epoch_keys(text))
        result.steps.append(done)
        result.resumes += args[0] == "resume"
        return done

    for i, fraction in enumerate(plan.kill_fractions):
        remaining = max(0, workload.lines_total - len(printed))
        args = workload.start_args(case_dir) if i == 0 else ["resume", str(run_dir)]
        if not step(args, int(fraction * remaining)).killed:
            break  # it ended before its kill point: nothing more to kill
    if result.steps[-1].killed:
        result.fault = tear(plan.fault, run_dir, random.Random(plan.tear_seed))
    final = step(["resume", str(run_dir)], None)
    if final.exit_code != 0:
        final = step(["resume", str(run_dir)], None)  # one more plain resume, as a person would try first
        result.needed_person = final.exit_code != 0
    check = check_tables(workload.kind, run_dir, reference_dir) if run_dir.is_dir() else TableCheck()
    result.tables = check.as_dict()
    result.seconds = round(time.monotonic() - start, 1)
    return result


def case_line(result: CaseResult, cases: int) -> str:
    """The progress line of a finished case."""
    plan, tables = result.plan, result.tables
    steps = ", ".join(s.describe() for s in result.steps)
    fault = f"; {result.fault}" if result.fault else ""
    return (f"case {plan['index'] + 1}/{cases} {plan['command']}/{plan['fault']}: {steps}{fault} -> lost "
            f"{tables.get('lost', 0)}, duplicated {tables.get('duplicated', 0)}, differing "
            f"{tables.get('differing', 0)}, needed a person: {'YES' if result.needed_person else 'no'} "
            f"({result.seconds:.0f}s)")


def totals(results: list[CaseResult]) -> dict[str, int]:
    """The summary figures over all cases."""
    return {"runs": len(results),
            "kills": sum(s.killed for r in results for s in r.steps),
            "resumes": sum(r.resumes for r in results),
            "rows_expected": sum(r.tables.get("expected", 0) for r in results),
            "rows_lost": sum(r.tables.get("lost", 0) for r in results),
            "rows_duplicated": sum(r.tables.get("duplicated", 0) for r in results),
            "rows_differing": sum(r.tables.get("differing", 0) for r in results),
            "runs_needing_a_person": sum(r.needed_person for r in results)}


def markdown(command: str, results: list[CaseResult], figures: dict[str, int], wall_s: float) -> str:
    """The summary as Markdown: the figures, then one row per case."""
    lines = [f"`{command}` ({wall_s / 60:.1f} min)", "",
             "| runs | kills | resumes | rows expected | rows lost | rows duplicated | rows differing | "
             "runs needing a person |", "|---|---|---|---|---|---|---|---|",
             "| " + " | ".join(str(figures[k]) for k in ("runs", "kills", "resumes", "rows_expected", "rows_lost",
                                                         "rows_duplicated", "rows_differing",
                                                         "runs_needing_a_person")) + " |",
             "", "| case | command | fault | what ran | lost | dup | diff | person | s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        what = ", ".join(s.describe() for s in r.steps) + (f"; {r.fault}" if r.fault else "")
        lines.append(f"| {r.plan['index'] + 1} | {r.plan['command']} | {r.plan['fault']} | {what} | "
                     f"{r.tables.get('lost', 0)} | {r.tables.get('duplicated', 0)} | {r.tables.get('differing', 0)} | "
                     f"{'YES' if r.needed_person else 'no'} | {r.seconds:.0f} |")
    return "\n".join(lines) + "\n"


def run_reference(workload: Workload, out: Path, timeout: float) -> Path:
    """Run ``workload`` once without faults under ``out/reference``; its folder. Exits if it is incomplete."""
    parent = out / "reference" / workload.kind
    parent.mkdir(parents=True)
    step, text = run_cli(workload.start_args(parent), parent / "run", None, timeout)
    if step.exit_code != 0 or len(epoch_keys(text)) != workload.lines_total:
        sys.exit(f"error: the reference {workload.kind} run failed (exit {step.exit_code}, "
                 f"{len(epoch_keys(text))} of {workload.lines_total} epoch lines): see {parent}")
    return parent / workload.folder


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    """The tool's arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the case plans (default 0)")
    parser.add_argument("--cases", type=int, default=20, help="number of cases (default 20)")
    parser.add_argument("--out", type=Path, default=None, help="an empty or new folder (default: a temp folder)")
    parser.add_argument("--num-cpus", type=int, default=2, choices=(1, 2, 4), help="CPUs of each run's Ray")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of each trial (default 6)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a single CLI process may run")
    args = parser.parse_args(argv)
    if not 1 <= args.cases <= 1000:
        parser.error(f"--cases must be 1..1000, got {args.cases}")
    if not 2 <= args.epochs <= 100:
        parser.error(f"--epochs must be 2..100, got {args.epochs}")
    if args.out is None:
        args.out = Path(tempfile.mkdtemp(prefix="raynas-faults-"))
    elif args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        parser.error(f"--out {args.out} must be a new or empty folder")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    """Run the cases; 0 when no row was lost, duplicated or changed and no run needed a person, else 1."""
    args = parse_args(argv)
    command = "python tools/fault_injection.py " + shlex.join(
        [f"--seed={args.seed}", f"--cases={args.cases}", f"--num-cpus={args.num_cpus}", f"--epochs={args.epochs}"])
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    workloads = {kind: Workload(kind, args.epochs, args.num_cpus) for kind in ("search", "train")}
    plans = plan_cases(args.seed, args.cases)
    print(f"fault injection: {args.cases} case(s), seed {args.seed} -> {out}", flush=True)
    references = {}
    for kind in sorted({plan.kind for plan in plans}):
        references[kind] = run_reference(workloads[kind], out, args.timeout)
        print(f"reference {kind} run: {references[kind]}", flush=True)
    results = []
    for plan in plans:
        result = run_case(plan, workloads[plan.kind], out / "cases" / f"{plan.index + 1:02d}", references[plan.kind],
                          args.timeout)
        results.append(result)
        print(case_line(result, args.cases), flush=True)
    wall_s = time.monotonic() - start
    figures = totals(results)
    report = markdown(command, results, figures, wall_s)
    (out / "summary.md").write_text(report)
    (out / "summary.json").write_text(json.dumps(
        {"command": command, "seed": args.seed, "wall_s": round(wall_s, 1), "totals": figures,
         "cases": [{**asdict(r), "steps": [asdict(s) for s in r.steps]} for r in results]}, indent=1) + "\n")
    print(report, end="")
    print(f"summary: {out / 'summary.md'}, {out / 'summary.json'}", flush=True)
    bad = ("rows_lost", "rows_duplicated", "rows_differing", "runs_needing_a_person")
    return 1 if any(figures[name] for name in bad) else 0


if __name__ == "__main__":
    sys.exit(main())
