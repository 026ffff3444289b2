"""The typed, frozen config of an experiment (``raynas search``) and of a training run (``raynas train``).

Every field carries ``metadata`` that the loader uses to validate it and that ``tools/config_reference.py``
turns into the config reference, docs/config.md:

- ``doc``: one line saying what the field is;
- ``choices``: the allowed values (for names of registered things, see ``registry`` instead);
- ``registry``: the name of a registry whose names are the allowed values ("spaces", "datasets", "selections");
- ``ge`` / ``gt`` / ``le`` / ``lt``: numeric bounds (every size and count has a finite upper one, from
  :mod:`raynas.config.limits`);
- ``bool_words``: a text setting whose words YAML reads as booleans (``on``/``off``): false and true are
  read as these two words.

``None`` defaults mean "not set": the code picks a documented default (for example the space's own
evaluation channels). Nothing here imports torch or ray.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, TypeVar

from raynas.allocator import ALLOCATORS
from raynas.config.limits import (MAX_BATCH_SIZE, MAX_CHANNELS, MAX_CLASSES, MAX_CPUS, MAX_EPOCHS, MAX_GPUS,
                                  MAX_IMAGE_SIZE, MAX_LAYERS, MAX_SAMPLES, MAX_SEED, MAX_STEPS, MAX_TRIALS,
                                  MAX_WORKERS)
from raynas.errors import ConfigError
from raynas.ranking import RANK_METRIC_COLUMNS


#: ``tune.metric`` values that are ground-truth columns, and the mode each is ranked by
GROUND_TRUTH_METRICS = ("gt_test_acc", "gt_percentile", "gt_regret")
GROUND_TRUTH_MODES = {"gt_test_acc": "max", "gt_percentile": "max", "gt_regret": "min"}


def _f(default: Any, doc: str, **rules: Any) -> Any:
    """A dataclass field with a default, a one-line doc and validation rules."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"doc": doc, **rules})
    return field(default=default, metadata={"doc": doc, **rules})


@dataclass(frozen=True)
class DataConfig:
    """Which data set to use and how to split it."""

    name: str = _f("digits", "data set", registry="datasets")
    root: Optional[str] = _f(None, "folder holding the files (cifar10, cifar100, imagefolder, imagenet16)")
    download: bool = _f(False, "cifar10/cifar100: let torchvision download into root (needs internet)")
    noise_std: float = _f(0.0, "std of fixed, seeded Gaussian noise added to every input (0: clean)", ge=0.0)
    image_size: Optional[int] = _f(None, "resize inputs to this square size (default: native size)",
                                   ge=4, le=MAX_IMAGE_SIZE)
    test_fraction: float = _f(0.2, "share held out as test split (data sets without their own)", gt=0.0, lt=1.0)
    train_portion: float = _f(0.5, "share of the search split that trains weights; the rest trains alphas",
                              gt=0.0, lt=1.0)
    limit: Optional[int] = _f(None, "use at most this many samples of the search split (quick runs)",
                              ge=2, le=MAX_SAMPLES)
    seed: int = _f(0, "seed of the splits and of the noise (shared by every trial)", ge=0, le=MAX_SEED)
    num_samples: int = _f(512, "synthetic: number of samples", ge=10, le=MAX_SAMPLES)
    num_classes: int = _f(10, "synthetic: number of classes", ge=2, le=MAX_CLASSES)
    channels: int = _f(3, "synthetic: input channels", ge=1, le=MAX_CHANNELS)
    cutout: Optional[int] = _f(None, "cutout length for training from scratch (null: the protocol's, half the image "
                                     "side for DARTS spaces (16 on CIFAR), off for NB201; 0: off)",
                                     ge=0, le=MAX_IMAGE_SIZE)
    num_workers: int = _f(0, "DataLoader worker processes for file-backed data sets", ge=0, le=MAX_WORKERS)


@dataclass(frozen=True)
class SupernetConfig:
    """Size of the weight-sharing supernet."""

    channels: int = _f(16, "initial channels C", ge=1, le=MAX_CHANNELS)
    layers: int = _f(8, "darts spaces: number of cells; nb201: cells per stage N", ge=1, le=MAX_LAYERS)
    stem_multiplier: int = _f(3, "darts spaces: stem outputs stem_multiplier * C channels", ge=1, le=64)
    channels_last: bool = _f(False, "keep weights and activations channels-last (NHWC): the same function, "
                                    "faster convolutions on CPUs (oneDNN); see docs/performance.md")
    checkpoint_cells: int = _f(0, "activation checkpointing: the first N cells (NB201: blocks) keep only their "
                                  "inputs and recompute the rest in the backward pass; the same function, less "
                                  "memory, one more forward of those cells (see docs/performance.md)",
                                  ge=0, le=MAX_LAYERS)


@dataclass(frozen=True)
class SearchConfig:
    """The bilevel search loop (defaults: DARTS, Liu et al. 2019)."""

    epochs: int = _f(50, "search epochs", ge=1, le=MAX_EPOCHS)
    batch_size: int = _f(64, "batch size of both splits", ge=1, le=MAX_BATCH_SIZE)
    order: int = _f(1, "DARTS order: 1 (first) or 2 (unrolled, second)", choices=(1, 2))
    seed: int = _f(0, "seed of the search (weights, alphas, batch order)", ge=0, le=MAX_SEED)
    weight_lr: float = _f(0.025, "weight SGD learning rate (cosine-annealed)", gt=0.0)
    weight_lr_min: float = _f(0.001, "final weight learning rate of the cosine schedule", ge=0.0)
    weight_momentum: float = _f(0.9, "weight SGD momentum", ge=0.0, lt=1.0)
    weight_decay: float = _f(3e-4, "weight SGD weight decay", ge=0.0)
    grad_clip: float = _f(5.0, "gradient-norm clip of the weight step (0: off)", ge=0.0)
    arch_lr: float = _f(3e-4, "architecture Adam learning rate", gt=0.0)
    arch_beta1: float = _f(0.5, "architecture Adam beta1", ge=0.0, lt=1.0)
    arch_beta2: float = _f(0.999, "architecture Adam beta2", ge=0.0, lt=1.0)
    arch_weight_decay: float = _f(1e-3, "architecture Adam weight decay", ge=0.0)
    unrolled_eps: float = _f(0.01, "order 2: finite-difference step is unrolled_eps / ||grad||", gt=0.0)
    warmup_epochs: int = _f(0, "epochs that train weights only before alphas start to move", ge=0, le=MAX_EPOCHS)
    steps_per_epoch: Optional[int] = _f(None, "cap on steps per epoch (default: one pass over the weight split)",
                                        ge=1, le=MAX_STEPS)
    eval_derived: bool = _f(True, "evaluate the derived architecture with inherited weights every epoch")
    sharpness_every: int = _f(0, "every N epochs, log the dominant Hessian eigenvalue of the architecture loss "
                                 "w.r.t. the alphas (arch_sharpness; 0: off)", ge=0, le=MAX_EPOCHS)
    sharpness_iters: int = _f(20, "power-iteration steps of that estimate (on the first architecture-split batch)",
                              ge=1, le=10_000)
    rank_metrics: list[str] = _f(["params"], "extra metrics of the derived cell, for ranking a population "
                                             "(docs/ranking.md; params, the default tune.metric, costs nothing): "
                                             "bn (derived_bn_val_acc/_loss: BatchNorm statistics re-estimated on "
                                             "training batches), finetune (derived_finetune_val_acc/_loss: a copy "
                                             "fine-tuned), neighborhood (derived_neighborhood_val_acc/_loss: mean "
                                             "over the cell and random neighbours), params (derived_params); each "
                                             "records its seconds too (derived_<kind>_time_s)")
    rank_metrics_every: int = _f(1, "measure search.rank_metrics every N epochs and at the last one (NaN on the "
                                    "others)", ge=1, le=MAX_EPOCHS)
    rank_bn_batches: int = _f(8, "rank_metrics bn: training batches the BatchNorm statistics are re-estimated on",
                              ge=1, le=MAX_STEPS)
    rank_finetune_steps: int = _f(200, "rank_metrics finetune: SGD steps of the copy on the weight split (lr cosine "
                                       "to 0; the search's momentum, weight decay and clip)", ge=1, le=MAX_STEPS)
    rank_finetune_lr: Optional[float] = _f(None, "rank_metrics finetune: initial learning rate (default: "
                                                 "search.weight_lr)", gt=0.0)
    rank_neighbors: int = _f(4, "rank_metrics neighborhood: random neighbours (one edge's op changed) averaged "
                                "with the cell", ge=1, le=MAX_WORKERS)
    rank_eval_batches: Optional[int] = _f(None, "rank_metrics bn, finetune, neighborhood: architecture-split "
                                                "batches per evaluation (default: all)", ge=1, le=MAX_STEPS)
    device: str = _f("auto", "auto (a GPU when the trial has one), cpu or cuda", choices=("auto", "cpu", "cuda"))
    threads: Optional[int] = _f(None, "torch threads per trial (default: the trial's CPUs)", ge=1, le=MAX_WORKERS)


@dataclass(frozen=True)
class PerturbationConfig:
    """DARTS-PT (Wang et al. 2021): decide each edge by how much removing an op hurts the supernet [code]."""

    criterion: str = _f("acc", "keep the op whose removal lowers validation accuracy most (acc) or raises "
                               "validation loss most (loss)", choices=("acc", "loss"))
    proj_intv: int = _f(5, "fine-tuning epochs between two decisions (0: decide without fine-tuning)",
                        ge=0, le=MAX_EPOCHS)
    edge_order: str = _f("random", "next undecided edge drawn at random (seeded by search.seed) or fixed "
                                   "(lowest first)", choices=("random", "fixed"))
    topology: bool = _f(True, "darts spaces: pick each node's 2 inputs by perturbation too (false: the 2 whose "
                              "kept op has the largest softmax weight)")
    finetune_lr_factor: float = _f(0.1, "fine-tuning restarts the weight lr at search.weight_lr times this "
                                        "(see finetune_lr_schedule)", gt=0.0)
    finetune_lr_schedule: str = _f("constant", "the fine-tuning weight lr stays where it restarts (constant, "
                                               "the released code, which never steps its cosine scheduler) or "
                                               "anneals to search.weight_lr_min over the stage (cosine)",
                                   choices=("constant", "cosine"))
    topology_drop: str = _f("after_round", "the edges a topology round removes leave the supernet when the "
                                           "node's round ends (after_round, the released code) or each before "
                                           "the round's next step (immediate)", choices=("after_round", "immediate"))


@dataclass(frozen=True)
class SamplingConfig:
    """Random sampling (weight-sharing random search; NA-RS with objectives.na): score drawn architectures."""

    samples: int = _f(100, "architectures drawn uniformly from the space and scored with the supernet's weights "
                           "(with objectives.na: by their neighbourhood)", ge=1, le=MAX_SAMPLES)


@dataclass(frozen=True)
class SelectionConfig:
    """How the final architecture is derived from the trained supernet.

    The keys here apply to every selection (the last three to those that evaluate candidates: perturbation and
    sampling); each selection's own settings are in its subsection, read only when ``name`` picks it.
    """

    name: str = _f("magnitude", "selection method: magnitude (DARTS), perturbation (DARTS-PT) or sampling "
                                "(random search, NA-RS with objectives.na); the last two are a stage after "
                                "search.epochs", registry="selections")
    skip_disconnected: bool = _f(True, "never derive a cell without a path from input to output")
    batch_stats: bool = _f(True, "perturbation, sampling: evaluate candidates with BatchNorm batch statistics "
                                 "(DARTS-PT's code) rather than running statistics")
    eval_batches: Optional[int] = _f(None, "perturbation, sampling: validation batches per candidate evaluation "
                                           "(default: the whole architecture split)", ge=1, le=MAX_STEPS)
    workers: int = _f(1, "perturbation, sampling: Ray actors evaluating one decision's candidates in parallel "
                         "(1: in the trial's process)", ge=1, le=MAX_WORKERS)
    perturbation: PerturbationConfig = field(default_factory=PerturbationConfig,
                                             metadata={"doc": "DARTS-PT's settings (name: perturbation)"})
    sampling: SamplingConfig = field(default_factory=SamplingConfig,
                                     metadata={"doc": "random sampling's settings (name: sampling)"})


@dataclass(frozen=True)
class NAConfig:
    """NA-DARTS / NA-RS (Wang et al. 2021): score an architecture by its neighbourhood [recon]."""

    neighbors: int = _f(4, "neighbours M sampled per architecture step (NA-DARTS) or per scored architecture "
                           "(NA-RS)", ge=1, le=MAX_WORKERS)
    radius: int = _f(1, "edges whose op changes in a neighbour (Hamming distance r)", ge=1, le=MAX_LAYERS)
    aggregation: str = _f("mean", "how the neighbourhood's losses (NA-RS: accuracies) combine: mean, or max: the "
                                  "worst member (highest loss; NA-RS: lowest accuracy)", choices=("mean", "max"))
    representation: str = _f("dominant", "NA-DARTS neighbour: move the dominant op's mass to the other ops "
                                         "(dominant) or add uniform noise to alpha (perturb)",
                             choices=("dominant", "perturb"))
    noise: float = _f(0.3, "representation perturb: noise range [-noise, noise] added to alpha", gt=0.0)
    include_center: bool = _f(False, "NA-DARTS: aggregate the current architecture's own loss too "
                                     "(NA-RS always includes it)")


@dataclass(frozen=True)
class SDConfig:
    """SD-DARTS (Zhu et al. 2023): distil voting teachers (earlier supernet snapshots) into the weight step [recon]."""

    teachers: int = _f(3, "snapshots K that vote; distillation starts once K exist", ge=1, le=MAX_WORKERS)
    interval: Optional[int] = _f(None, "steps between snapshots (default: a quarter of an epoch's steps)",
                                 ge=1, le=MAX_STEPS)
    temperature: float = _f(4.0, "softmax temperature tau of teachers and student", gt=0.0)
    weight: float = _f(0.5, "beta: loss = CE + beta * tau^2 * KL(teachers || student)", ge=0.0)
    voting: str = _f("soft", "teacher prediction: mean of probabilities (soft) or majority of argmax labels "
                             "(hard)", choices=("soft", "hard"))
    distill_arch: bool = _f(False, "add the distillation term to the architecture step too")
    placement: str = _f("local", "where snapshots live: in the trial's process (local) or in Ray actors "
                                 "(actor) that answer one batch ahead", choices=("local", "actor"))
    actors: int = _f(1, "placement actor: teacher actors per search (snapshots spread over them)", ge=1, le=MAX_WORKERS)


@dataclass(frozen=True)
class TAConfig:
    """TA-DARTS (Sheth, Xie 2023): tri-level search that rewards transferability to an auxiliary model [recon]."""

    aux: str = _f("resnet", "auxiliary model: a CIFAR-style ResNet (resnet) or the derived network of "
                            "aux_genotype (genotype)", choices=("resnet", "genotype"))
    aux_depth: int = _f(20, "aux resnet: depth 6n + 2 (20: ResNet-20; 8: one block per stage)",
                        ge=8, le=6 * MAX_LAYERS + 2)
    aux_channels: int = _f(16, "auxiliary model's initial channels C", ge=1, le=MAX_CHANNELS)
    aux_genotype: Optional[str] = _f(None, "aux genotype: a genotype text (NB201 arch string or DARTS "
                                           "Genotype(...)) whose network is the auxiliary model")
    aux_space: Optional[str] = _f(None, "aux genotype: the space of aux_genotype (default: the search's space)",
                                  registry="spaces")
    aux_layers: Optional[int] = _f(None, "aux genotype: cells (NB201: per stage) of its network (default: the "
                                         "supernet's)", ge=1, le=MAX_LAYERS)
    aux_lr: float = _f(0.025, "auxiliary SGD learning rate (follows the weights' cosine schedule)", gt=0.0)
    aux_momentum: float = _f(0.9, "auxiliary SGD momentum", ge=0.0, lt=1.0)
    aux_weight_decay: float = _f(3.0e-4, "auxiliary SGD weight decay", ge=0.0)
    transfer_weight: float = _f(1.0, "lambda: auxiliary loss = CE + lambda * L_QRS(aux; main)", ge=0.0)
    val_weight: float = _f(1.0, "gamma: architecture loss = L_val(aux after transfer) + gamma * L_val(main)",
                           ge=0.0)
    tau: float = _f(0.1, "QRS temperature of the relative similarities", gt=0.0)
    matching: str = _f("bce", "QRS matching loss: bce (soft targets), mse, or hinge (order only)",
                       choices=("bce", "mse", "hinge"))
    margin: float = _f(0.0, "matching hinge: the margin", ge=0.0)
    quadruples: int = _f(1024, "QRS quadruples sampled per batch (0: every quadruple; fine up to ~100 samples)",
                         ge=0, le=MAX_SAMPLES)
    hypergradient: str = _f("nested", "how the auxiliary loss reaches alpha: through the unrolled transfer and "
                                      "weight steps (nested) or not at all (none: only gamma * L_val acts)",
                            choices=("nested", "none"))


@dataclass(frozen=True)
class E2NASConfig:
    """E2NAS (Zhang et al. 2020): search in a graph autoencoder's latent space (method: e2nas) [recon]."""

    autoencoder: Optional[str] = _f(None, "file written by `raynas e2nas pretrain SPACE` for the search's space, "
                                          "read by every trial and shard (default: `raynas search` pretrains one "
                                          "into the experiment folder first)")
    pretrain_epochs: int = _f(5, "autoencoder unset: epochs of that pretraining (seed 0, the CLI's defaults)",
                              ge=1, le=MAX_EPOCHS)
    pretrain_per_search: bool = _f(False, "autoencoder unset: `raynas search` pretrains one autoencoder per "
                                          "search seed (seeded with it: e2nas_autoencoder_seed<N>.pt beside the "
                                          "shared one) instead of one, seed 0, for every search; a search's "
                                          "spread then includes the autoencoder's")
    init_scale: float = _f(1.0e-3, "std of the latent vector's random start (the released code's 1e-3)", ge=0.0)
    estimator: str = _f("ours", "how z becomes architecture weights: ours (the decoded cell, gradient through the "
                                "decoder's softmax, every op runs in the architecture step, z steps before the "
                                "weights) or released (the released code: softmax(z) reshaped to edges x ops, a "
                                "cell drawn from the decoder, one op per edge in both steps, z steps after the "
                                "weights; NB201 with a 30-d latent)", choices=("ours", "released"))
    exploration: str = _f("density", "exploration enhancement: a differentiable archive-density term (density), "
                                      "the released code's detached novelty that only rescales the step "
                                      "(detached), or none", choices=("density", "detached", "none"))
    exploration_weight: float = _f(1.0, "weight of the density term: arch loss = (1 - eta) * L_val + eta * weight "
                                         "* density, eta = 1 - sigmoid(10 * (2 * epoch / epochs - 1))", ge=0.0)
    archive: int = _f(50, "recent architectures whose latents form the density's archive (ours: distinct ones; "
                          "released: the cells of the last steps, repeats kept, as the released code)",
                      ge=1, le=MAX_SAMPLES)
    novelty_after: Optional[int] = _f(None, "cells the archive must hold before the exploration term counts "
                                            "(novelty 0 below); null: the estimator's own, 1 for ours, 50 for "
                                            "released (the released code's)", ge=1, le=MAX_SAMPLES)
    bandwidth: float = _f(1.0, "Gaussian kernel width of the archive density, in RMS latent units", gt=0.0)
    complement: float = _f(0.5, "lam: weight loss = (1 - lam) L(a_t) + lam / 2 (L(a_t-1) + L(a_c)) (0: off)",
                           ge=0.0, le=1.0)


@dataclass(frozen=True)
class ObjectivesConfig:
    """Terms added to the supernet steps; each is off unless its section is given (e.g. `na: {}`)."""

    na: Optional[NAConfig] = field(default=None, metadata={"doc": "neighbourhood-aware architecture loss "
                                                                  "(NA-DARTS) and NA-RS scoring"})
    sd: Optional[SDConfig] = field(default=None, metadata={"doc": "self-distillation from voting teachers "
                                                                  "(SD-DARTS)"})
    ta: Optional[TAConfig] = field(default=None, metadata={"doc": "transferability to an auxiliary model "
                                                                  "(TA-DARTS, tri-level)"})


@dataclass(frozen=True)
class AshaConfig:
    """Asynchronous successive halving (Li et al. 2020): stops weak trials at rungs."""

    grace_period: int = _f(1, "epochs every trial runs before it can be stopped", ge=1, le=MAX_EPOCHS)
    reduction_factor: float = _f(3.0, "keep the top 1/reduction_factor of trials at each rung", gt=1.0)
    max_t: Optional[int] = _f(None, "last rung in epochs (default: search.epochs)", ge=1, le=MAX_EPOCHS)


@dataclass(frozen=True)
class PbtConfig:
    """Population based training (Jaderberg et al. 2017): exploit better trials' state, explore params."""

    perturbation_interval: int = _f(2, "epochs between exploit/explore decisions", ge=1, le=MAX_EPOCHS)
    quantile_fraction: float = _f(0.25, "bottom fraction that copies the top fraction", gt=0.0, le=0.5)
    resample_probability: float = _f(0.25, "chance to resample a mutated value instead of scaling it",
                                     ge=0.0, le=1.0)
    synch: bool = _f(False, "synchronous PBT: every trial waits at each decision until all have reached it, "
                            "so the bottom fraction always exploits (Tune's default is asynchronous)")


#: ``tune.callbacks`` names: the Ray Tune integrations raynas can hand every trial's results to
TUNE_INTEGRATIONS = ("mlflow", "wandb")
#: the longest ``tune.status_every`` (a day, in seconds)
MAX_STATUS_EVERY_S = 86_400.0


@dataclass(frozen=True)
class MlflowConfig:
    """MLflow (tune.callbacks: [mlflow]): one MLflow run per trial, through Ray Tune's MLflowLoggerCallback."""

    tracking_uri: Optional[str] = _f(None, "MLflow tracking URI: a server (http://host:5000), a database "
                                           "(sqlite:///path/mlflow.db) or a file store (file:///path/mlruns) "
                                           "(null: MLflow's own default, MLFLOW_TRACKING_URI or ./mlflow.db)")
    experiment_name: Optional[str] = _f(None, "MLflow experiment the runs go to, created when missing "
                                              "(null: the search's name)")


@dataclass(frozen=True)
class WandbConfig:
    """Weights & Biases (tune.callbacks: [wandb]): one W&B run per trial, through Ray Tune's WandbLoggerCallback."""

    project: Optional[str] = _f(None, "W&B project (null: the search's name)")
    group: Optional[str] = _f(None, "W&B group of the trials' runs (null: the search's name)")
    mode: str = _f("online", "online (needs a W&B API key: wandb login or WANDB_API_KEY), offline (runs are "
                             "written under <experiment>/wandb/, for wandb sync later; no key, no network) or "
                             "disabled", choices=("online", "offline", "disabled"))


@dataclass(frozen=True)
class TuneConfig:
    """The population of searches that Ray Tune runs."""

    searcher: str = _f("grid", "how trials' values are chosen: grid (tune.grid), random or optuna (tune.params)",
                       choices=("grid", "random", "optuna"))
    grid: dict = _f({}, "dotted config key -> list of values; one trial per combination (cartesian product)")
    params: dict = _f({}, "dotted config key -> distribution, e.g. {loguniform: [1.0e-4, 1.0e-2]}; "
                          "kinds: choice, uniform, loguniform, randint (random/optuna searchers, PBT mutations)")
    variants: dict = _f({}, "named presets: name -> {dotted config key: value, ...}, the settings a search with that "
                            "top-level variant runs with (sections too, e.g. {objectives.na: {}}); tune.grid.variant: "
                            "[names] makes the methods one axis of the grid")
    num_samples: int = _f(1, "repeats of the grid, or trials drawn by the random/optuna searcher", ge=1, le=MAX_TRIALS)
    metric: str = _f("derived_params", "reported metric that ranks trials and drives schedulers (default: the "
                                       "derived network's parameters, which ranked searches' cells best of the "
                                       "candidates measured, docs/ranking.md); the "
                                        "derived_bn/finetune/neighborhood/params ones turn their kind on in "
                                        "search.rank_metrics; the gt_* ones are the derived cell's ground truth "
                                        "(section benchmark; gt_regret with mode min, the others max)",
                     choices=("derived_val_acc", "val_acc", "train_acc", "derived_val_loss", "val_loss",
                              "train_loss", *RANK_METRIC_COLUMNS, *GROUND_TRUTH_METRICS))
    mode: str = _f("max", "max or min of the metric", choices=("max", "min"))
    scheduler: str = _f("fifo", "trial scheduler", choices=("fifo", "asha", "pbt"))
    asha: AshaConfig = field(default_factory=AshaConfig, metadata={"doc": "ASHA settings (scheduler: asha)"})
    pbt: PbtConfig = field(default_factory=PbtConfig, metadata={"doc": "PBT settings (scheduler: pbt)"})
    seed: Optional[int] = _f(None, "seed of the random/optuna searcher and of PBT's choices", ge=0, le=MAX_SEED)
    max_concurrent_trials: Optional[int] = _f(None, "trials running at once (default: as many as fit)",
                                              ge=1, le=MAX_TRIALS)
    max_failures: int = _f(0, "retries of a trial whose process dies, from its last checkpoint", ge=0, le=MAX_WORKERS)
    reuse_actors: bool = _f(True, "reuse trial processes between trials (saves start-up time)")
    tensorboard: bool = _f(True, "write every trial's metrics as TensorBoard event files into its folder under "
                                 "<experiment>/tune/ (tensorboard --logdir <experiment>/tune)")
    callbacks: list[str] = _f([], "integrations that receive every trial's metrics, each only when its package "
                                  "is installed: mlflow (tune.mlflow; pip install mlflow-skinny) and wandb "
                                  "(tune.wandb; pip install wandb); docs/monitoring.md")
    mlflow: MlflowConfig = field(default_factory=MlflowConfig,
                                 metadata={"doc": "MLflow settings (tune.callbacks: [mlflow])"})
    wandb: WandbConfig = field(default_factory=WandbConfig,
                               metadata={"doc": "Weights & Biases settings (tune.callbacks: [wandb])"})
    status_every: float = _f(30.0, "seconds between two population status lines (trials running, finished, "
                                   "failed and pending, the best so far, an ETA); one more at the end; 0: none",
                             ge=0.0, le=MAX_STATUS_EVERY_S)


@dataclass(frozen=True)
class ResourcesConfig:
    """What one trial asks Ray for."""

    cpus_per_trial: float = _f(1.0, "CPUs of the trial's own process (with shards: the coordinator)",
                               gt=0.0, le=MAX_CPUS)
    gpus_per_trial: float = _f(0.0, "GPUs of the trial's own process (shards: 1 only)", ge=0.0, le=MAX_GPUS)
    shards: int = _f(1, "data-parallel supernet replicas per trial, each a Ray actor (1: no actors)",
                     ge=1, le=MAX_WORKERS)
    cpus_per_shard: float = _f(1.0, "CPUs of each shard actor (shards > 1)", gt=0.0, le=MAX_CPUS)
    gpus_per_shard: float = _f(0.0, "GPUs of each shard actor (shards > 1); one shard per GPU", ge=0.0, le=MAX_GPUS)
    cpus_per_selection_worker: float = _f(1.0, "CPUs of each selection worker (selection.workers > 1)",
                                          gt=0.0, le=MAX_CPUS)
    gpus_per_selection_worker: float = _f(0.0, "GPUs of each selection worker (selection.workers > 1)",
                                          ge=0.0, le=MAX_GPUS)
    cpus_per_teacher: float = _f(1.0, "CPUs of each teacher actor (objectives.sd.placement: actor)",
                                 gt=0.0, le=MAX_CPUS)
    gpus_per_teacher: float = _f(0.0, "GPUs of each teacher actor (objectives.sd.placement: actor)",
                                 ge=0.0, le=MAX_GPUS)


@dataclass(frozen=True)
class RayConfig:
    """Where Ray runs."""

    address: Optional[str] = _f(None, "join this cluster (host:port or 'auto'); default: start a local one")
    num_cpus: Optional[int] = _f(None, "CPUs of the local instance (default: all of this machine's)", ge=1, le=MAX_CPUS)
    allocator: str = _f("mimalloc", "memory allocator of the Ray worker processes that run trials, shards, "
                                    "teachers and selection workers: mimalloc (preloaded; about 10 % less "
                                    "peak memory and time in a DARTS search step) or system (malloc); "
                                    "mimalloc falls back to system where its library is not installed",
                        choices=ALLOCATORS)
    dashboard: bool = _f(False, "serve the Ray dashboard of the local instance and print its URL (needs "
                                "pip install 'ray[default]'); with ray.address, print the cluster's")
    dashboard_host: str = _f("127.0.0.1", "address the dashboard listens on (loopback: this machine only; "
                                          "an SSH tunnel reaches it from elsewhere)")
    dashboard_port: Optional[int] = _f(None, "port of the dashboard, which must be free (null: 8265, or the next "
                                             "free one)", ge=1, le=65_535)


@dataclass(frozen=True)
class BenchmarkConfig:
    """Scoring an NB201 search against the ground-truth table every epoch (docs/benchmark.md)."""

    score: str = _f("auto", "record each epoch's derived cell's ground truth (gt_test_acc, gt_percentile, "
                            "gt_regret): auto scores nb201 searches on the benchmark's data when the table has "
                            "rows of the protocol; on requires it; off never", choices=("auto", "on", "off"),
                    bool_words=("off", "on"))
    table: Optional[list[str]] = _f(None, "benchmark Parquet files or folders (raynas bench build) (default: the "
                                          "table shipped with raynas)")
    protocol: Optional[str] = _f(None, "training protocol YAML of the table (default: the shipped one, "
                                       "raynas/benchmark/protocol.yaml)")
    official: Optional[str] = _f(None, "an official NAS-Bench-201 .pth file or NATS-Bench topology folder "
                                       "(NATS-tss-v1_0-3ffb9-simple/): the ground truth of nb201 searches on "
                                       "cifar10, cifar100 and imagenet16 (200-epoch test accuracy; table and "
                                       "protocol then unset)")
    cache_dir: Optional[str] = _f(None, "folder of cells trained on demand (missing from the table) (default: "
                                        "benchmark_cache/ in the experiment folder); with official: folder of the "
                                        "file's extracted accuracies (default: official/ in "
                                        "$RAYNAS_BENCHMARK_CACHE or ~/.cache/raynas/benchmark)")


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole search experiment: one YAML file of ``search_configs/``."""

    name: str = _f("experiment", "experiment name: the folder under --out")
    space: str = _f("nb201", "search space", registry="spaces")
    method: str = _f("darts", "darts: gradient-based bilevel search; rs: weight-sharing random search (one "
                              "uniformly sampled path per weight step, no architecture step); e2nas: search in "
                              "an autoencoder's latent space (section e2nas)",
                     choices=("darts", "rs", "e2nas"))
    variant: Optional[str] = _f(None, "the tune.variants entry this search runs: its settings take the place of the "
                                      "config's (null: none); usually set per trial by tune.grid.variant")
    data: DataConfig = field(default_factory=DataConfig, metadata={"doc": "data set and splits"})
    supernet: SupernetConfig = field(default_factory=SupernetConfig, metadata={"doc": "supernet size"})
    search: SearchConfig = field(default_factory=SearchConfig, metadata={"doc": "bilevel search loop"})
    objectives: ObjectivesConfig = field(default_factory=ObjectivesConfig,
                                         metadata={"doc": "loss terms on the supernet steps (NA, SD, TA)"})
    e2nas: E2NASConfig = field(default_factory=E2NASConfig, metadata={"doc": "latent-space search (method: e2nas)"})
    selection: SelectionConfig = field(default_factory=SelectionConfig, metadata={"doc": "architecture selection"})
    tune: TuneConfig = field(default_factory=TuneConfig, metadata={"doc": "population run by Ray Tune"})
    resources: ResourcesConfig = field(default_factory=ResourcesConfig, metadata={"doc": "per-trial resources"})
    ray: RayConfig = field(default_factory=RayConfig, metadata={"doc": "Ray cluster"})
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig,
                                       metadata={"doc": "ground-truth scoring of NB201 searches"})


@dataclass(frozen=True)
class TrainConfig:
    """Training a derived architecture from scratch (``raynas train --config``); None = the space's protocol default.

    Protocol defaults: DARTS spaces (Liu et al. 2019, CIFAR-10): 600 epochs, batch 96, SGD lr 0.025 cosine
    to 0, momentum 0.9, wd 3e-4, grad clip 5, C=36, 20 cells, auxiliary head 0.4, drop-path 0.2, cutout 16.
    NB201 (Dong & Yang 2020): 200 epochs, batch 256, SGD Nesterov lr 0.1 cosine to 0, wd 5e-4, C=16, N=5.
    """

    space: str = _f("nb201", "search space of the genotype (raynas train: from SOURCE / --space)", registry="spaces")
    genotype: str = _f("", "genotype text, DARTS Genotype(...) or NB201 arch string (raynas train: SOURCE)")
    data: DataConfig = field(default_factory=DataConfig, metadata={"doc": "data set and splits"})
    epochs: Optional[int] = _f(None, "training epochs", ge=1, le=MAX_EPOCHS)
    batch_size: Optional[int] = _f(None, "batch size", ge=1, le=MAX_BATCH_SIZE)
    lr: Optional[float] = _f(None, "initial SGD learning rate (cosine to lr_min)", gt=0.0)
    lr_min: float = _f(0.0, "final learning rate", ge=0.0)
    momentum: float = _f(0.9, "SGD momentum", ge=0.0, lt=1.0)
    nesterov: Optional[bool] = _f(None, "Nesterov momentum")
    weight_decay: Optional[float] = _f(None, "weight decay", ge=0.0)
    grad_clip: float = _f(5.0, "gradient-norm clip (0: off)", ge=0.0)
    channels: Optional[int] = _f(None, "initial channels C", ge=1, le=MAX_CHANNELS)
    layers: Optional[int] = _f(None, "darts: cells; nb201: cells per stage", ge=1, le=MAX_LAYERS)
    auxiliary: Optional[bool] = _f(None, "darts: auxiliary head")
    auxiliary_weight: float = _f(0.4, "weight of the auxiliary head's loss", ge=0.0)
    drop_path_prob: Optional[float] = _f(None, "darts: drop-path probability", ge=0.0, lt=1.0)
    seed: int = _f(0, "seed of initialisation and batch order (raynas train: --seeds)", ge=0, le=MAX_SEED)
    device: str = _f("auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda"))
    threads: Optional[int] = _f(None, "torch threads (default: torch's)", ge=1, le=MAX_WORKERS)


SectionT = TypeVar("SectionT")


def required_section(section: Optional[SectionT], path: str) -> SectionT:
    """``section`` (an optional config section, e.g. ``objectives.sd``) of a part that is built only when the
    section is set; building it without the section is a one-line :class:`ConfigError` naming ``path``."""
    if section is None:
        raise ConfigError(f"{path} is not set: the term it configures is built only when the section is given")
    return section
