"""What ``raynas train`` will train: architectures from their sources, seeds, and the evaluation run folder.

A source is a genotype text, a genotype file (one genotype per line; blank lines and ``#`` comments
skipped) or a search experiment folder (the genotypes of chosen trials, by default the best one). Every
genotype is parsed and checked to be trainable, and every trial's training config validated, before
anything is written. Nothing here imports torch or ray.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import yaml

from raynas.config import (RayConfig, TrainConfig, apply_overrides, config_to_dict, load_config,
                           train_config_from_dict, with_overrides)
from raynas.config.limits import (MAX_CPUS, MAX_GPUS, MAX_SEED, MAX_SEEDS, MAX_TRIALS, MAX_WORKERS, check_int,
                                  check_number)
from raynas.config.yaml_input import load_yaml
from raynas.errors import ConfigError, GenotypeError, RaynasError
from raynas.output_paths import check_folder_name, check_output_parent
from raynas.results.query import EVALUATION_PLAN, EVALUATIONS_DIR
from raynas.spaces import guess_space

PER_TRIAL_KEYS = ("genotype", "space", "seed")
"""Training settings each trial sets for itself (from its architecture and seed)."""

ARGUMENT_SOURCE = "argument"
"""The ``source`` of a genotype given on the command line."""


@dataclass(frozen=True)
class Architecture:
    """One genotype to train, with where it came from."""

    genotype: str
    space: str
    source: str = ARGUMENT_SOURCE  # "argument", a genotype file's path, or a search experiment folder
    source_trial: Optional[str] = None  # the search trial that derived it


@dataclass(frozen=True)
class EvaluationPlan:
    """A population of trainings from scratch: every architecture with every seed, one Tune trial each."""

    name: str
    train: TrainConfig  # shared settings; each trial sets genotype, space and seed
    architectures: tuple[Architecture, ...]
    seeds: tuple[int, ...] = (0,)
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 0
    ray: RayConfig = field(default_factory=RayConfig)

    def trial_specs(self) -> list[dict[str, Any]]:
        """Tune's config of each trial (architecture-major): training overrides and the genotype's source."""
        return [{"overrides": {"genotype": arch.genotype, "space": arch.space, "seed": seed},
                 "source": arch.source, "source_trial": arch.source_trial}
                for arch in self.architectures for seed in self.seeds]

    def trial_config(self, overrides: Mapping[str, Any]) -> TrainConfig:
        """The training config of one trial (its overrides on the shared settings)."""
        return train_config_from_dict(with_overrides(self.base_config(), dict(overrides)))

    def base_config(self) -> dict[str, Any]:
        """The shared settings as a plain dict; torch threads default to the trial's CPUs."""
        base = config_to_dict(self.train)
        if base["threads"] is None:
            base["threads"] = max(1, int(self.cpus_per_trial))
        return base

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain data (``evaluation.yaml``; a null training setting is the space's protocol default)."""
        shared = {k: v for k, v in config_to_dict(self.train).items() if k not in PER_TRIAL_KEYS}
        return {"name": self.name, "train": shared,
                "architectures": [{"genotype": a.genotype, "space": a.space, "source": a.source,
                                   "source_trial": a.source_trial} for a in self.architectures],
                "seeds": list(self.seeds), "cpus_per_trial": self.cpus_per_trial,
                "gpus_per_trial": self.gpus_per_trial, "max_failures": self.max_failures,
                "ray": config_to_dict(self.ray)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = EVALUATION_PLAN) -> "EvaluationPlan":
        """Read back :meth:`to_dict` (a ConfigError names what is wrong with a damaged file)."""
        try:
            from raynas.config import config_from_dict

            return cls(name=str(data["name"]), train=train_config_from_dict(data["train"]),
                       architectures=tuple(Architecture(**arch) for arch in data["architectures"]),
                       seeds=tuple(int(s) for s in data["seeds"]), cpus_per_trial=float(data["cpus_per_trial"]),
                       gpus_per_trial=float(data["gpus_per_trial"]), max_failures=int(data["max_failures"]),
                       ray=config_from_dict(data.get("ray") or {}, RayConfig))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: not a raynas evaluation plan ({type(exc).__name__}: {exc})") from None


def write_plan(plan: EvaluationPlan, directory: Path) -> Path:
    """Write ``directory/evaluation.yaml`` atomically."""
    from raynas.files import write_text_atomically

    path = directory / EVALUATION_PLAN
    write_text_atomically(path, yaml.safe_dump(plan.to_dict(), sort_keys=False, allow_unicode=True))
    return path


def read_plan(directory: Path) -> EvaluationPlan:
    """The plan of an evaluation run folder; a ConfigError when the folder is not one."""
    path = directory / EVALUATION_PLAN
    if not path.is_file():
        raise ConfigError(f"'{directory}' is not a raynas evaluation folder: it has no {EVALUATION_PLAN} "
                          "(pass the folder raynas train created, printed when it started)")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        detail = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(f"{path}: not a raynas evaluation plan ({detail})") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: not a raynas evaluation plan (expected a mapping)")
    return EvaluationPlan.from_dict(data, str(path))


def path_kind(text: str | os.PathLike) -> str:
    """``"dir"``, ``"file"`` or ``""`` for a SOURCE: no such path, or a text no path can be (a DARTS genotype
    is longer than a file name may be, and ``Path.is_dir`` raises for that rather than saying False)."""
    try:
        path = Path(text)
        if path.is_dir():
            return "dir"
        if path.is_file():
            return "file"
    except (OSError, ValueError):  # ENAMETOOLONG; ValueError: a NUL character
        pass
    return ""


def is_search_experiment(path: Path) -> bool:
    """Whether ``path`` is a search experiment folder (``raynas search``'s ``<out>/<name>``)."""
    return (path_kind(path) == "dir" and (path / "config.yaml").is_file()
            and not (path / EVALUATION_PLAN).is_file())


def check_architecture(arch: Architecture) -> Architecture:
    """``arch`` with its genotype in the space's canonical text; refuses unparsable or untrainable cells."""
    from raynas.spaces import get_space

    space = get_space(arch.space)
    where = f" ({arch.source}" + (f", trial {arch.source_trial})" if arch.source_trial else ")")
    try:
        genotype = space.parse_genotype(arch.genotype)
    except GenotypeError as err:
        raise GenotypeError(f"{err}{where}") from None
    if not space.is_connected(genotype):
        raise GenotypeError(f"genotype {genotype}{where} has a cell with no path from its input to its output "
                            "(every path goes through 'none'); it cannot learn. Pick another genotype")
    return replace(arch, genotype=str(genotype))


def genotypes_from_file(path: Path, space: Optional[str]) -> list[Architecture]:
    """The genotypes of a text file, one per line (blank lines and ``#`` comments skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"genotype file {path}: cannot read it ({exc})") from None
    texts = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not texts:
        raise ConfigError(f"genotype file {path}: no genotype in it (one per line; '#' starts a comment)")
    return [Architecture(text, space or guess_space(text), source=str(path)) for text in texts]


def genotypes_from_experiment(path: Path, trials: Sequence[str], top: Optional[int]) -> list[Architecture]:
    """The genotypes of search trials: those of ``trials``, else of the ``top`` best trials (distinct
    genotypes with connected cells, by the experiment's ranking metric; ``top`` None: every one). Each is in
    its trial's space, which a population's variants may set (``tune.variants``), else the config's."""
    from raynas.results import leaderboard, load_table

    cfg = load_config(path / "config.yaml")
    board = leaderboard(str(path)).to_pylist()
    if trials:
        by_id = {row["trial_id"]: row for row in board}
        chosen = []
        for trial_id in dict.fromkeys(trials):
            row = by_id.get(trial_id)
            if row is None:
                known = ", ".join(list(by_id)[:10]) or "none"
                raise ConfigError(f"--trial {trial_id!r}: no such trial in {path}; its trials: {known}")
            if not row.get("genotype"):
                raise ConfigError(f"--trial {trial_id!r}: the trial derived no genotype yet (status {row['status']})")
            chosen.append(row)
    else:
        chosen, seen = [], set()
        for row in board:
            if row.get("genotype") and row.get("connected") is not False and row["genotype"] not in seen:
                seen.add(row["genotype"])
                chosen.append(row)
            if len(chosen) == top:
                break
        if not chosen:
            raise ConfigError(f"{path}: no trial derived a trainable genotype yet (see raynas results {path})")
    # The leaderboard leaves the space out; the trials table has each trial's. A genotype two trials derived (in
    # two spaces too: a cell's network does not depend on the space it was searched in) is trained once, as
    # the better-ranked trial's.
    spaces = {row["trial_id"]: row["space"] for row in load_table(path, "trials").to_pylist()}
    return [Architecture(row["genotype"], spaces.get(row["trial_id"]) or cfg.space, source=str(path),
                         source_trial=row["trial_id"]) for row in chosen]


@dataclass(frozen=True)
class PreparedEvaluation:
    """A validated evaluation plan, not yet started, and the folder it will be written to."""

    plan: EvaluationPlan
    directory: Path


def default_run_name() -> str:
    """``train-<UTC date>-<time>``: a fresh evaluation run name."""
    return "train-" + datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")


def plan_evaluation(sources: Sequence[str], *, space: Optional[str] = None, dataset: Optional[str] = None,
                    config_path: Optional[str] = None, overrides: Sequence[str] = (), epochs: Optional[int] = None,
                    seeds: Sequence[int] = (0,), trials: Sequence[str] = (), top: int = 1,
                    name: Optional[str] = None, out: Optional[str | os.PathLike] = None,
                    cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0, max_failures: int = 0,
                    address: Optional[str] = None, num_cpus: Optional[int] = None) -> PreparedEvaluation:
    """Resolve the sources and settings of ``raynas train`` into a checked plan; writes nothing.

    The shared training settings come from ``config_path`` (a training YAML, see the README) or the
    protocol defaults, then ``--dataset``/``--epochs``, then ``overrides``. Without ``--dataset`` and
    without a data section in the config, a search experiment source lends its own data settings.
    The run folder is ``out/name``; ``out`` defaults to ``<experiment>/evaluations`` for a single search
    experiment source, else ``raynas_results``.
    """
    from raynas.config import read_config_file

    if not sources:
        raise ConfigError("SOURCE: give a genotype, a genotype file or a search experiment folder")
    if not seeds:
        raise ConfigError("--seeds: give at least one seed, e.g. --seeds 0,1,2")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"--seeds: {len(seeds)} seeds; at most {MAX_SEEDS} are allowed at once")
    if not all(0 <= seed <= MAX_SEED for seed in seeds):
        shown = ",".join(map(str, seeds[:10])) + (",..." if len(seeds) > 10 else "")
        raise ConfigError(f"--seeds = {shown}: seeds must be >= 0 and <= {MAX_SEED}")
    check_int("--top", top, 1, MAX_TRIALS)
    check_number("--cpus-per-trial", cpus_per_trial, MAX_CPUS, positive=True)
    check_number("--gpus-per-trial", gpus_per_trial, MAX_GPUS)
    check_int("--max-failures", max_failures, 0, MAX_WORKERS)
    check_int("--num-cpus", num_cpus, 1, MAX_CPUS)
    if name is not None:
        check_folder_name("--name", name)  # the run folder stays inside --out
    architectures: list[Architecture] = []
    experiments: list[Path] = []
    for text in sources:
        path = Path(text)
        if is_search_experiment(path):
            experiments.append(path)
            architectures += genotypes_from_experiment(path, trials, top)
        elif path_kind(text) == "dir":
            raise ConfigError(f"SOURCE {text!r}: a folder but not a search experiment (no config.yaml in it)")
        elif path_kind(text) == "file":
            architectures += genotypes_from_file(path, space)
        else:
            architectures.append(Architecture(text, space or guess_space(text)))
    if trials and not experiments:
        raise ConfigError("--trial: only for a search experiment folder SOURCE")
    architectures = list(dict.fromkeys(check_architecture(arch) for arch in architectures))

    data: dict[str, Any] = dict(read_config_file(config_path)) if config_path else {}
    if "genotype" in data or "space" in data or "seed" in data:
        raise ConfigError(f"{config_path}: genotype, space and seed come from SOURCE and --seeds in raynas train; "
                          "remove them from the training config")
    if dataset is not None:
        data["data"] = {**(data.get("data") or {}), "name": dataset}
    elif "data" not in data and experiments:
        data["data"] = config_to_dict(load_config(experiments[0] / "config.yaml").data)
    if epochs is not None:
        data["epochs"] = epochs
    origin = "training config" + (f" {config_path}" if config_path else "")
    try:
        train = train_config_from_dict(apply_overrides(data, overrides))
    except RaynasError as err:
        raise ConfigError(f"{origin}: {err}") from None
    plan = EvaluationPlan(name=name or default_run_name(), train=train, architectures=tuple(architectures),
                          seeds=tuple(dict.fromkeys(seeds)), cpus_per_trial=cpus_per_trial,
                          gpus_per_trial=gpus_per_trial, max_failures=max_failures,
                          ray=RayConfig(address=address, num_cpus=num_cpus))
    count = len(plan.architectures) * len(plan.seeds)
    if count > MAX_TRIALS:
        raise ConfigError(f"{len(plan.architectures)} architecture(s) x {len(plan.seeds)} seed(s) = {count} "
                          f"trials; at most {MAX_TRIALS} are allowed in one run")
    for spec in plan.trial_specs():
        plan.trial_config(spec["overrides"])  # every trial's config is valid before anything runs
    if out is None:
        out = experiments[0] / EVALUATIONS_DIR if len(experiments) == 1 else "raynas_results"
    directory = Path(out) / plan.name
    if directory.exists():
        raise ConfigError(f"evaluation folder '{directory}' already exists; choose another --name or --out")
    check_output_parent("--out", out)
    from raynas.ray_address import check_reachable

    check_reachable(address)  # no cluster answers: one line now (bounded), before any folder exists
    from raynas.ray_session import check_running

    check_running(plan.ray)  # a Ray of the user's that --num-cpus/--address contradict (the Python API)
    return PreparedEvaluation(plan, directory)
