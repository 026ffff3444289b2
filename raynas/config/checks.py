"""Rules that involve more than one field of a config section (single-field rules live in the metadata).

Each check takes a built section and its dotted path and returns a :class:`Problem` or ``None``; the loader
turns a problem into a one-line :class:`~raynas.errors.ConfigError`. Checks only look at values and the
file system; they import nothing heavy (the ground-truth check reads the benchmark protocol through
:mod:`raynas.benchmark.scoring`, only for a config that asks for the ground truth). Before its checks, a
section may be normalised (``data.root`` becomes an absolute path).
"""

from __future__ import annotations

import os
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

from raynas.config.schema import (GROUND_TRUTH_METRICS, GROUND_TRUTH_MODES, TUNE_INTEGRATIONS, BenchmarkConfig,
                                  DataConfig, E2NASConfig, ExperimentConfig, MlflowConfig, RayConfig, ResourcesConfig,
                                  SDConfig, SearchConfig, TAConfig, TrainConfig, TuneConfig, WandbConfig)
from raynas.data.imagenet16_layout import layout_problem
from raynas.output_paths import folder_name_problem
from raynas.ranking import RANK_METRICS, kind_of

#: Data sets that read files from ``data.root``; the cifar ones can also download into it.
FILE_BACKED_DATASETS = ("cifar10", "cifar100", "imagefolder", "imagenet16")
DOWNLOADABLE_DATASETS = ("cifar10", "cifar100")


class Problem(NamedTuple):
    """A violated rule: the dotted path of the field to blame, its value and what is allowed."""

    path: str
    value: Any
    detail: str


def join_path(prefix: str, name: str) -> str:
    """``prefix.name``, or ``name`` at the top level."""
    return f"{prefix}.{name}" if prefix else name


def normalize_data(cfg: DataConfig) -> DataConfig:
    """``root`` as an absolute path: trials run in other working folders (Ray Tune's trial folders)."""
    if cfg.root is None or not cfg.root.strip():
        return cfg
    return replace(cfg, root=os.path.abspath(os.path.expanduser(cfg.root)))


def normalize_e2nas(cfg: E2NASConfig) -> E2NASConfig:
    """``autoencoder`` as an absolute path, for the same reason as :func:`normalize_data`."""
    if cfg.autoencoder is None or not cfg.autoencoder.strip():
        return cfg
    return replace(cfg, autoencoder=os.path.abspath(os.path.expanduser(cfg.autoencoder)))


def _absolute(path: Optional[str]) -> Optional[str]:
    return None if path is None or not path.strip() else os.path.abspath(os.path.expanduser(path))


def normalize_benchmark(cfg: BenchmarkConfig) -> BenchmarkConfig:
    """The table, protocol and cache paths absolute, for the same reason as :func:`normalize_data`."""
    table = None if cfg.table is None else [_absolute(p) or p for p in cfg.table]
    return replace(cfg, table=table, protocol=_absolute(cfg.protocol), official=_absolute(cfg.official),
                   cache_dir=_absolute(cfg.cache_dir))


def check_benchmark(cfg: BenchmarkConfig, path: str) -> Optional[Problem]:
    """A named protocol, table or official file must exist: a typo would otherwise turn ``auto`` scoring off
    unnoticed. An official file is the whole ground truth, so it comes without a table or protocol (whether
    it reads is checked when the search starts: :func:`raynas.benchmark.scoring.resolve_scoring`)."""
    if cfg.official is not None:
        if not os.path.exists(cfg.official):
            return Problem(join_path(path, "official"), cfg.official,
                           "not an existing file or folder; name a NAS-Bench-201 .pth file "
                           "(NAS-Bench-201-v1_1-096897.pth) or a NATS-Bench topology folder "
                           "(NATS-tss-v1_0-3ffb9-simple/), or null")
        for key in ("table", "protocol"):
            if getattr(cfg, key) is not None:
                return Problem(join_path(path, key), getattr(cfg, key),
                               "must be null with benchmark.official: the official file is the ground truth")
    if cfg.protocol is not None and not os.path.isfile(cfg.protocol):
        return Problem(join_path(path, "protocol"), cfg.protocol,
                       "not an existing file; name a protocol YAML such as raynas/benchmark/protocol.yaml, or null")
    if cfg.table is not None and not cfg.table:
        return Problem(join_path(path, "table"), cfg.table,
                       "must name at least one benchmark file or folder (null: the shipped table)")
    for i, source in enumerate(cfg.table or ()):
        if not os.path.exists(source):
            return Problem(f"{join_path(path, 'table')}[{i}]", source,
                           "not an existing file or folder (a benchmark table or a raynas bench build folder)")
    return None


def check_data(cfg: DataConfig, path: str) -> Optional[Problem]:
    """File-backed data sets need ``root``; it must be an existing folder unless cifar may download into it."""
    if cfg.name not in FILE_BACKED_DATASETS:
        return None
    root_path = join_path(path, "root")
    name_path = join_path(path, "name")
    if cfg.name == "imagenet16" and cfg.download:
        # ImageNet's terms of access: the files come from image-net.org with an account, never from here
        return Problem(join_path(path, "download"), cfg.download,
                       "imagenet16 cannot be downloaded; get the 16x16 downsampled ImageNet (pickle format) from "
                       f"image-net.org, unzip it into {root_path} and set download: false")
    if cfg.root is None or not cfg.root.strip():
        return Problem(root_path, cfg.root,
                       f"required when {name_path} is {cfg.name!r}: set it to the folder holding the files")
    if cfg.name == "imagenet16":  # its files are known: say which are missing before anything runs
        problem = layout_problem(Path(cfg.root))
        return None if problem is None else Problem(root_path, cfg.root, problem)
    if os.path.isdir(cfg.root):
        return None
    if cfg.name in DOWNLOADABLE_DATASETS:
        if cfg.download:
            return None
        return Problem(root_path, cfg.root,
                       f"not an existing folder; put the {cfg.name} files there or set "
                       f"{join_path(path, 'download')}: true to download them")
    return Problem(root_path, cfg.root, f"not an existing folder ({name_path} {cfg.name!r} reads its files there)")


def check_search(cfg: SearchConfig, path: str) -> Optional[Problem]:
    """The cosine schedule must not rise, and warm-up must leave epochs in which alphas move."""
    if cfg.weight_lr_min > cfg.weight_lr:
        return Problem(join_path(path, "weight_lr_min"), cfg.weight_lr_min,
                       f"must be <= {join_path(path, 'weight_lr')} ({cfg.weight_lr!r})")
    if cfg.warmup_epochs >= cfg.epochs:
        return Problem(join_path(path, "warmup_epochs"), cfg.warmup_epochs,
                       f"must be < {join_path(path, 'epochs')} ({cfg.epochs})")
    for i, kind in enumerate(cfg.rank_metrics):
        if kind not in RANK_METRICS:
            return Problem(f"{join_path(path, 'rank_metrics')}[{i}]", kind,
                           f"must be one of {', '.join(map(repr, RANK_METRICS))}")
        if kind in cfg.rank_metrics[:i]:
            return Problem(f"{join_path(path, 'rank_metrics')}[{i}]", kind, "is listed twice; name each kind once")
    return None


def check_tune(cfg: TuneConfig, path: str) -> Optional[Problem]:
    """Every grid entry needs at least one value, every variant is a mapping of dotted keys (both are checked
    further when trials are expanded: :mod:`raynas.config.trials`, :mod:`raynas.config.variants`)."""
    for key, values in cfg.grid.items():
        if not isinstance(values, list) or not values:
            return Problem(f"{join_path(path, 'grid')}[{key!r}]", values,
                           "must be a non-empty list of values, e.g. [0, 1, 2]")
    for name, entry in cfg.variants.items():
        where = f"{join_path(path, 'variants')}[{name!r}]"
        if not name.strip():
            return Problem(where, entry, "a variant needs a name that is not blank")
        if not isinstance(entry, dict):
            return Problem(where, entry, "must be a mapping of dotted config keys to values, e.g. "
                                         "{search.order: 2, objectives.na: {}} ({} for the config as it is)")
        for key in entry:
            if not isinstance(key, str) or not key or not all(key.split(".")):
                return Problem(where, entry, f"key {key!r} is not a dotted config key such as search.order")
    return None


def check_tune_callbacks(cfg: TuneConfig, path: str) -> Optional[Problem]:
    """``tune.callbacks`` names each integration once; an integration's settings changed from their defaults
    while ``tune.callbacks`` does not name it would be ignored without a word, so they are refused."""
    where = join_path(path, "callbacks")
    for i, name in enumerate(cfg.callbacks):
        if name not in TUNE_INTEGRATIONS:
            return Problem(f"{where}[{i}]", name, f"must be one of {', '.join(map(repr, TUNE_INTEGRATIONS))}")
        if name in cfg.callbacks[:i]:
            return Problem(f"{where}[{i}]", name, "is listed twice; name each integration once")
    for name, settings, defaults in (("mlflow", cfg.mlflow, MlflowConfig()), ("wandb", cfg.wandb, WandbConfig())):
        if name in cfg.callbacks:
            continue
        for key in (spec.name for spec in fields(settings)):
            if getattr(settings, key) != getattr(defaults, key):
                return Problem(join_path(path, f"{name}.{key}"), getattr(settings, key),
                               f"is set, but {where} does not name {name!r}; add it: {where}: [{name}]")
    return None


def check_ray(cfg: RayConfig, path: str) -> Optional[Problem]:
    """``ray.dashboard_host`` is an IP address (or localhost): Ray binds the dashboard to it."""
    import ipaddress

    host = cfg.dashboard_host.strip()
    if host == "localhost":
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return Problem(join_path(path, "dashboard_host"), cfg.dashboard_host,
                       "must be an IP address of this machine, e.g. 127.0.0.1 (loopback, the default) or "
                       "0.0.0.0 (every interface)")
    return None


def check_resources(cfg: ResourcesConfig, path: str) -> Optional[Problem]:
    """Sharded trials keep their GPUs in the shards, one shard per whole GPU (NCCL)."""
    if cfg.shards > 1 and cfg.gpus_per_trial:
        return Problem(join_path(path, "gpus_per_trial"), cfg.gpus_per_trial,
                       f"must be 0 with shards = {cfg.shards}: the shards hold the GPUs; set gpus_per_shard instead")
    if cfg.shards > 1 and cfg.gpus_per_shard != int(cfg.gpus_per_shard):
        return Problem(join_path(path, "gpus_per_shard"), cfg.gpus_per_shard,
                       "must be a whole number with shards > 1 (NCCL runs one shard per GPU); 0 runs CPU shards")
    return None


def check_experiment(cfg: ExperimentConfig, path: str) -> Optional[Problem]:
    """The experiment name becomes a folder under ``--out``, so it must not contain a path."""
    name_problem = folder_name_problem(cfg.name)
    if name_problem is not None:
        return Problem(join_path(path, "name"), cfg.name, name_problem)
    return (check_selection_fits(cfg, path) or check_sharpness_fits(cfg, path) or check_objectives_fit(cfg, path)
            or check_e2nas_fits(cfg, path) or check_ground_truth_fits(cfg, path) or check_rank_metrics_fit(cfg, path))


#: Rank metrics that train or re-estimate a copy of the supernet, which sharded BatchNorm cannot do alone.
UNSHARDED_RANK_METRICS = ("bn", "finetune")


def check_rank_metrics_fit(cfg: ExperimentConfig, path: str) -> Optional[Problem]:
    """A ``tune.metric`` of ``search.rank_metrics`` (its kind is on: :func:`normalize_experiment`) must be
    measured on every epoch a scheduler decides on (ASHA and PBT compare every report); copies of a sharded
    supernet cannot be trained alone."""
    s, metric = cfg.search, cfg.tune.metric
    for unsharded in UNSHARDED_RANK_METRICS:
        if unsharded in s.rank_metrics and cfg.resources.shards > 1:
            return Problem(join_path(path, "search.rank_metrics"), s.rank_metrics,
                           f"must not hold {unsharded!r} with resources.shards = {cfg.resources.shards}: it trains "
                           "a copy of the supernet, which runs on unsharded searches only")
    kind = kind_of(metric)
    if kind is None:
        return None
    if s.rank_metrics_every > 1 and cfg.tune.scheduler in ("asha", "pbt"):
        return Problem(join_path(path, "search.rank_metrics_every"), s.rank_metrics_every,
                       f"must be 1 with tune.metric = {metric!r} and tune.scheduler = {cfg.tune.scheduler!r}: the "
                       "scheduler compares every epoch's value, and the others would be NaN")
    return None


def check_ground_truth_fits(cfg: ExperimentConfig, path: str) -> Optional[Problem]:
    """A ground-truth ``tune.metric`` is ranked by its own mode and needs scoring. Whether the search can be
    scored at all (an NB201 search on the benchmark's data, a readable protocol) is the benchmark's to say:
    :func:`raynas.benchmark.scoring.check_scoring`, which every entry point runs after loading the config."""
    metric, score = cfg.tune.metric, cfg.benchmark.score
    if metric in GROUND_TRUTH_METRICS and cfg.tune.mode != GROUND_TRUTH_MODES[metric]:
        return Problem(join_path(path, "tune.mode"), cfg.tune.mode,
                       f"must be {GROUND_TRUTH_MODES[metric]!r} with tune.metric = {metric!r}")
    if metric in GROUND_TRUTH_METRICS and score == "off":
        return Problem(join_path(path, "tune.metric"), metric,
                       "needs the ground truth, but benchmark.score is 'off'; set it to auto or on, or rank by "
                       "another metric")
    return None


#: Objective terms that read the softmax of DARTS' alphas, which a latent-space search does not have.
ALPHA_TERMS = {"na": "its neighbours move the mass of softmax(alpha), and E2NAS' weights are one-hot",
               "ta": "its nested hypergradient is built for DARTS' alphas (not verified on a latent)"}


def check_e2nas_fits(cfg: ExperimentConfig, path: str) -> Optional[Problem]:
    """``method: e2nas`` needs an existing autoencoder file (if one is named), a selection that reads a
    decoded cell, and terms that do not assume softmax alphas (SD composes; NA and TA are refused)."""
    if cfg.method != "e2nas":
        return None
    where = join_path(path, "e2nas.autoencoder")
    if cfg.e2nas.autoencoder and not os.path.isfile(cfg.e2nas.autoencoder):
        return Problem(where, cfg.e2nas.autoencoder,
                       "not an existing file: write one with `raynas e2nas pretrain SPACE --out FILE`")
    for name, why in ALPHA_TERMS.items():
        if getattr(cfg.objectives, name) is not None:
            return Problem(join_path(path, f"objectives.{name}"), "{...}",
                           f"must be unset with method = 'e2nas': {why}; objectives.sd composes with E2NAS")
    if cfg.selection.name == "perturbation":
        return Problem(join_path(path, "selection.name"), cfg.selection.name,
                       "must be 'magnitude' (the decoded cell) or 'sampling' with method = 'e2nas': E2NAS runs one "
                       "op per edge, so removing any other op changes nothing for perturbation to measure")
    return check_e2nas_estimator(cfg, path)


#: ``e2nas.novelty_after`` when unset, per ``e2nas.estimator``: ours' density counts from the first archived
#: cell; the released code's novelty is 0 until its archive holds 50 cells
NOVELTY_AFTER = {"ours": 1, "released": 50}


def novelty_after(cfg: E2NASConfig) -> int:
    """The archived cells the exploration term waits for: ``novelty_after``, or the estimator's own."""
    return cfg.novelty_after if cfg.novelty_after is not None else NOVELTY_AFTER[cfg.estimator]


def check_e2nas_estimator(cfg: ExperimentConfig, path: str) -> Optional[Problem]:
    """The released estimator reads softmax(z) as the edges x ops table of NB201 cells (whether the
    autoencoder's latent has that size is checked when the file is read); the exploration threshold must be
    reachable by the archive."""
    e2nas = cfg.e2nas
    if e2nas.estimator == "released":
        from raynas.spaces import get_space  # imported here: light, but not needed by other configs

        if get_space(cfg.space).inputs_per_node is not None:  # its cells choose each node's inputs
            return Problem(join_path(path, "e2nas.estimator"), e2nas.estimator,
                           f"runs on NB201 cells only (the released code reads softmax(z) as an edges x ops table "
                           f"of a cell that keeps every edge); space {cfg.space!r} chooses each node's inputs: "
                           "use 'ours'")
    threshold = novelty_after(e2nas)
    if threshold <= e2nas.archive:
        return None
    if e2nas.novelty_after is not None:
        return Problem(join_path(path, "e2nas.novelty_after"), threshold,
                       f"must be at most e2nas.archive = {e2nas.archive} (the archive never holds more cells, so "
                       "the exploration term would never count)")
    return Problem(join_path(path, "e2nas.archive"), e2nas.archive,
                   f"must be at least {threshold}, the {e2nas.estimator} estimator's e2nas.novelty_after (the "
                   "exploration term would never count); raise it or set e2nas.novelty_after lower")


def check_objectives_fit(cfg: ExperimentConfig, path: str) -> Optional[Problem]:
    """Random search needs a selection that scores architectures; a sharded search must compute what one
    process would, which a maximum over each shard's slice does not."""
    if cfg.method == "rs" and cfg.selection.name not in CANDIDATE_SELECTIONS:
        return Problem(join_path(path, "selection.name"), cfg.selection.name,
                       f"must be one of {', '.join(map(repr, CANDIDATE_SELECTIONS))} with method = 'rs': random "
                       "search trains no architecture parameters for magnitude to read")
    ta = cfg.objectives.ta
    if ta is not None:
        if cfg.method == "rs":
            return Problem(join_path(path, "method"), cfg.method,
                           "must be 'darts' with objectives.ta: TA-DARTS updates the architecture parameters, "
                           "which random search does not have")
        problem = check_ta_aux(ta, cfg.space, join_path(path, "objectives.ta"))
        if problem is not None:
            return problem
    na = cfg.objectives.na
    if na is not None and na.aggregation == "max" and cfg.resources.shards > 1:
        return Problem(join_path(path, "objectives.na.aggregation"), na.aggregation,
                       f"must be 'mean' with resources.shards = {cfg.resources.shards}: the worst neighbour of "
                       "each shard's slice is not the worst of the batch")
    return None


def check_ta_aux(ta: TAConfig, space: str, path: str) -> Optional[Problem]:
    """A genotype auxiliary model needs a genotype of its space (parsed here, so a typo fails before a trial)."""
    if ta.aux != "genotype":
        return None
    if not ta.aux_genotype:
        return Problem(join_path(path, "aux_genotype"), ta.aux_genotype,
                       "must be a genotype text (an NB201 arch string or a DARTS Genotype(...)) with aux = 'genotype'")
    from raynas.errors import GenotypeError, SpaceError
    from raynas.spaces import get_space

    try:
        get_space(ta.aux_space or space).parse_genotype(ta.aux_genotype)
    except (GenotypeError, SpaceError) as err:
        return Problem(join_path(path, "aux_genotype"), ta.aux_genotype, str(err))
    return None


def check_sharpness_fits(cfg: ExperimentConfig, path: str) -> Optional[Problem]:
    """The sharpness estimate back-propagates twice through the supernet, which sharded BatchNorm does not."""
    if cfg.search.sharpness_every and cfg.resources.shards > 1:
        return Problem(join_path(path, "search.sharpness_every"), cfg.search.sharpness_every,
                       f"must be 0 with resources.shards = {cfg.resources.shards}: the sharpness estimate runs on "
                       "unsharded searches only")
    return None


#: Selections whose stage evaluates candidates, which ``selection.workers`` Ray actors can share.
CANDIDATE_SELECTIONS = ("perturbation", "sampling")


def check_selection_fits(cfg: ExperimentConfig, path: str) -> Optional[Problem]:
    """Parallel selection workers are for unsharded trials: a sharded trial already splits each evaluation."""
    if cfg.selection.workers > 1 and cfg.resources.shards > 1:
        return Problem(join_path(path, "selection.workers"), cfg.selection.workers,
                       f"must be 1 with resources.shards = {cfg.resources.shards}: the shards already split "
                       "every candidate evaluation; drop one of the two")
    if cfg.selection.workers > 1 and cfg.selection.name not in CANDIDATE_SELECTIONS:
        return Problem(join_path(path, "selection.workers"), cfg.selection.workers,
                       f"must be 1 with selection.name = {cfg.selection.name!r}: only "
                       f"{' and '.join(CANDIDATE_SELECTIONS)} evaluate candidates")
    return None


def check_sd(cfg: SDConfig, path: str) -> Optional[Problem]:
    """SD-DARTS keeps at most ``teachers + 1`` snapshots, so more teacher actors than that would sit idle."""
    if cfg.placement == "actor" and cfg.actors > cfg.teachers + 1:
        return Problem(join_path(path, "actors"), cfg.actors,
                       f"must be <= {join_path(path, 'teachers')} + 1 ({cfg.teachers + 1}): at most that many "
                       "snapshots are kept, so further teacher actors would hold nothing")
    return None


def check_train(cfg: TrainConfig, path: str) -> Optional[Problem]:
    """The cosine schedule of training from scratch must not rise."""
    if cfg.lr is not None and cfg.lr_min > cfg.lr:
        return Problem(join_path(path, "lr_min"), cfg.lr_min, f"must be <= {join_path(path, 'lr')} ({cfg.lr!r})")
    return None


def normalize_experiment(cfg: ExperimentConfig) -> ExperimentConfig:
    """A ``tune.metric`` of :mod:`raynas.ranking` turns its kind on: it joins ``search.rank_metrics`` (at the
    end) when the list lacks it, so naming the metric is enough to have it measured, and the resolved config
    says what runs."""
    kind = kind_of(cfg.tune.metric)
    if kind is None or kind in cfg.search.rank_metrics:
        return cfg
    return replace(cfg, search=replace(cfg.search, rank_metrics=[*cfg.search.rank_metrics, kind]))


#: How a section class is normalised once built (before its checks).
SECTION_NORMALIZERS: dict[type, Callable[[Any], Any]] = {DataConfig: normalize_data, E2NASConfig: normalize_e2nas,
                                                         BenchmarkConfig: normalize_benchmark,
                                                         ExperimentConfig: normalize_experiment}

#: The cross-field checks of each section class, run right after the section is built.
SECTION_CHECKS: dict[type, tuple[Callable[[Any, str], Optional[Problem]], ...]] = {
    DataConfig: (check_data,),
    SearchConfig: (check_search,),
    TuneConfig: (check_tune, check_tune_callbacks),
    RayConfig: (check_ray,),
    ResourcesConfig: (check_resources,),
    SDConfig: (check_sd,),
    BenchmarkConfig: (check_benchmark,),
    ExperimentConfig: (check_experiment,),
    TrainConfig: (check_train,),
}
