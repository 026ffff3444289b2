"""Training a derived architecture from scratch: the evaluation stage (one training; ``raynas train`` runs
a population of them as Ray Tune trials through :mod:`raynas.evaluation`).

Protocol defaults (used where the config leaves a value unset):

| setting | DARTS spaces (Liu et al. 2019, CIFAR-10) | NAS-Bench-201 (Dong & Yang 2020) |
|---|---|---|
| epochs | 600 | 200 |
| batch size | 96 | 256 |
| optimizer | SGD lr 0.025, momentum 0.9, wd 3e-4, cosine | SGD Nesterov lr 0.1, momentum 0.9, wd 5e-4, cosine |
| network | C=36, 20 cells, auxiliary head 0.4, drop-path 0.2 (ramped) | C=16, N=5 |
| grad clip | 5 | 5 |
| cutout (``data.cutout`` null) | half the image side (16 on 32x32) | off |

The network trains on the whole search split (both halves) and is tested on the held-out test split.
Genotypes whose cells have no path from input to output are refused.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from typing import Any, Callable, Optional, TypeVar

from raynas.config import TrainConfig
from raynas.errors import ConfigError, GenotypeError, SearchDivergedError
from raynas.results.schema import EVALUATION_CURVES

TRAIN_STATE_FILE = "train_state.pt"
"""File name of a training state (:meth:`ScratchTraining.get_state`) inside a Tune checkpoint."""


def resolve_protocol(cfg: TrainConfig) -> TrainConfig:
    """Fill every unset (None) setting of ``cfg`` with its space's protocol default
    (:meth:`~raynas.spaces.base.SearchSpace.training_protocol`)."""
    from raynas.spaces import get_space

    space = get_space(cfg.space)
    filled = {key: value for key, value in {**space.training_protocol(), **space.default_network_args()}.items()
              if getattr(cfg, key) is None}
    return replace(cfg, **filled)


def protocol_cutout(space: str, image_size: int) -> int:
    """The evaluation protocol's cutout length (:meth:`~raynas.spaces.base.SearchSpace.cutout`): half the
    image side for DARTS spaces (16 on CIFAR's 32x32, DeVries & Taylor 2017 as DARTS uses it), none for NB201."""
    from raynas.spaces import get_space

    return get_space(space).cutout(image_size)


def with_cutout(data: Any, cutout: int) -> Any:
    """``data`` (a :class:`raynas.data.DataBundle`) whose training augmentation cuts out ``cutout``-sided squares."""
    from raynas.data.loader import Augmentation

    if cutout <= 0:
        return data
    return replace(data, augmentation=replace(data.augmentation or Augmentation(), cutout=cutout))


FilledT = TypeVar("FilledT")


def filled(value: Optional[FilledT], name: str) -> FilledT:
    """A setting of a :class:`TrainConfig` that :func:`resolve_protocol` filled (the space's protocol sets every
    one it leaves unset); still unset is a one-line :class:`ConfigError`."""
    if value is None:
        raise ConfigError(f"{name} is unset: resolve the config with its space's protocol (resolve_protocol)")
    return value


class ScratchTraining:
    """One training of a derived architecture from scratch, an epoch at a time, resumable bit for bit.

    Built from a :class:`TrainConfig` (unset settings take the space's protocol, :func:`resolve_protocol`):
    refuses a genotype with a disconnected cell (unless ``allow_disconnected``: the benchmark trains every
    unique cell, and such a network learns only its classifier's bias), seeds everything, loads the data
    (the search split with the data set's training augmentation; the held-out test split) and builds the
    network. Each
    :meth:`run_epoch` trains one epoch (drop-path ramped linearly over the epochs, auxiliary head weighted
    by ``auxiliary_weight``, gradient clipping), tests, and returns the epoch's report, which carries the
    whole history so far (``epoch_<metric>`` lists). :meth:`get_state` / :meth:`set_state` hold weights,
    optimizer, schedule, history and RNG states; batch order and augmentation are seeded by (seed, epoch).
    """

    def __init__(self, cfg: TrainConfig, *, allow_disconnected: bool = False) -> None:
        import torch

        from raynas.data import EpochLoader, load_data
        from raynas.networks import count_flops, count_parameters
        from raynas.runtime import pick_device, seed_everything
        from raynas.spaces import get_space

        self.cfg = cfg = resolve_protocol(cfg)
        self.space = get_space(cfg.space)
        self.genotype = self.space.parse_genotype(cfg.genotype)
        if not allow_disconnected and not self.space.is_connected(self.genotype):
            raise GenotypeError(f"genotype {self.genotype} has a cell with no path from its input to its output "
                                "(every path goes through 'none'); it cannot learn. Pick another genotype "
                                "(raynas arch show reports \"connected\": false for such cells)")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        seed_everything(cfg.seed)
        self.epochs = filled(cfg.epochs, "epochs")
        self.device = pick_device(cfg.device)
        data = load_data(cfg.data, augment=True)
        if cfg.data.cutout is None:
            data = with_cutout(data, protocol_cutout(cfg.space, data.image_size))
        # a network of raynas.networks: an nn.Module with drop_path_prob and forward_with_aux
        self.model: Any = self.space.build_network(
            self.genotype, channels=filled(cfg.channels, "channels"), layers=filled(cfg.layers, "layers"),
            num_classes=data.num_classes, in_channels=data.in_channels, auxiliary=bool(cfg.auxiliary),
            drop_path_prob=filled(cfg.drop_path_prob, "drop_path_prob")).to(self.device)
        self.input_shape = (data.in_channels, data.image_size, data.image_size)
        self.network_args = {"space": cfg.space, "genotype": str(self.genotype), "channels": cfg.channels,
                             "layers": cfg.layers, "num_classes": data.num_classes, "in_channels": data.in_channels,
                             "image_size": data.image_size, "auxiliary": bool(cfg.auxiliary)}
        self.params = count_parameters(self.model)
        self.flops = count_flops(self.model, self.input_shape)
        batch_size = filled(cfg.batch_size, "batch_size")
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=filled(cfg.lr, "lr"), momentum=cfg.momentum,
                                         weight_decay=filled(cfg.weight_decay, "weight_decay"),
                                         nesterov=bool(cfg.nesterov))
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=self.epochs,
                                                                    eta_min=cfg.lr_min)
        self.train_loader = EpochLoader(data.full_train(), batch_size, shuffle=True, seed=cfg.seed)
        self.test_loader = EpochLoader(data.test, batch_size, shuffle=False, seed=0)
        self.epoch = 0
        self.history: dict[str, list[float]] = {name: [] for name in EVALUATION_CURVES}
        self.elapsed_s = 0.0

    @property
    def done(self) -> bool:
        """Whether every epoch of the config has run."""
        return self.epoch >= self.epochs

    def identity(self) -> dict[str, Any]:
        """What this training is: genotype, space, data set, seed, size (params, FLOPs, multiply-adds)."""
        from raynas.config import config_to_dict

        return {"genotype": str(self.genotype), "space": self.cfg.space, "dataset": self.cfg.data.name,
                "seed": self.cfg.seed, "params": self.params, "flops": self.flops, "macs": self.flops // 2,
                "epochs": self.cfg.epochs, "config_json": json.dumps(config_to_dict(self.cfg), sort_keys=True)}

    def run_epoch(self) -> dict[str, Any]:
        """Train and test one epoch; the report of that epoch (1-based ``epoch``) with the history so far."""
        cfg, model, device = self.cfg, self.model, self.device
        start = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        model.drop_path_prob = filled(cfg.drop_path_prob, "drop_path_prob") * self.epoch / self.epochs
        model.train()
        loss_sum = correct = seen = 0.0
        for x, y in self.train_loader.epoch(self.epoch):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss, logits = self.train_step(x, y)
            loss_sum += loss.item() * y.numel()
            correct += (logits.argmax(1) == y).sum().item()
            seen += y.numel()
        train_loss = loss_sum / max(seen, 1)
        if not math.isfinite(train_loss):
            raise SearchDivergedError(f"training diverged at epoch {self.epoch + 1}: train_loss {train_loss} "
                                      f"(lower lr = {cfg.lr} or keep grad_clip > 0)")
        self.scheduler.step()
        test_loss, test_acc = evaluate(model, self.test_loader, device)
        self.epoch += 1
        seconds = time.perf_counter() - start
        self.elapsed_s += seconds
        for name, value in zip(EVALUATION_CURVES, (train_loss, correct / max(seen, 1), test_loss, test_acc)):
            self.history[name].append(value)
        return {"epoch": self.epoch, **{name: values[-1] for name, values in self.history.items()},
                "lr": lr, "epoch_time_s": seconds, "train_time_s": self.elapsed_s,
                **{f"epoch_{name}": list(values) for name, values in self.history.items()}, **self.identity()}

    def train_step(self, x: Any, y: Any) -> tuple[Any, Any]:
        """One optimizer step on the batch ``(x, y)`` (on the device): the loss (auxiliary head included) and
        the logits."""
        import torch.nn.functional as F
        from torch import nn

        cfg = self.cfg
        self.optimizer.zero_grad(set_to_none=True)
        logits, aux_logits = self.model.forward_with_aux(x)
        loss = F.cross_entropy(logits, y)
        if aux_logits is not None:
            loss = loss + cfg.auxiliary_weight * F.cross_entropy(aux_logits, y)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        return loss, logits

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this training is (``torch.load(weights_only=True)`` safe)."""
        from raynas.runtime import capture_rng_state

        return {"epoch": self.epoch, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "history": {k: list(v) for k, v in self.history.items()},
                "elapsed_s": self.elapsed_s, "genotype": str(self.genotype), "network": dict(self.network_args),
                "rng": capture_rng_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned; a state of another genotype is refused."""
        from raynas.runtime import restore_rng_state

        if state["genotype"] != str(self.genotype):
            raise GenotypeError(f"checkpoint holds genotype {state['genotype']}, not {self.genotype}")
        self.epoch = int(state["epoch"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = {name: [float(v) for v in state["history"][name]] for name in EVALUATION_CURVES}
        self.elapsed_s = float(state["elapsed_s"])
        restore_rng_state(state["rng"])


def train_from_scratch(cfg: TrainConfig, *, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``cfg.genotype`` from scratch in this process; return test accuracy, parameter count and timings.

    ``raynas train`` runs the same :class:`ScratchTraining` as Ray Tune trials (:mod:`raynas.evaluation`).
    """
    start = time.perf_counter()
    training = ScratchTraining(cfg)
    identity = training.identity()
    echo(f"training {identity['genotype']} ({identity['params']:,} params) on {identity['dataset']} "
         f"for {identity['epochs']} epochs")
    report: dict[str, Any] = {"test_loss": float("nan"), "test_acc": float("nan")}
    while not training.done:
        report = training.run_epoch()
        echo(epoch_line(report))
    return {**identity, "test_loss": report["test_loss"], "test_acc": report["test_acc"],
            "wall_time_s": time.perf_counter() - start}


def epoch_line(report: dict[str, Any]) -> str:
    """One progress line of an epoch report of :meth:`ScratchTraining.run_epoch`."""
    return (f"epoch {report['epoch']:>3}/{report['epochs']}  train_loss {report['train_loss']:.4f}  "
            f"train_acc {report['train_acc']:.4f}  test_loss {report['test_loss']:.4f}  "
            f"test_acc {report['test_acc']:.4f}  ({report['epoch_time_s']:.1f}s)")
def evaluate(model: Any, loader: Any, device: Any) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (eval mode) over ``loader``."""
    import torch
    import torch.nn.functional as F

    model.eval()
    loss_sum = correct = seen = 0.0
    with torch.no_grad():
        for x, y in loader.epoch(0):
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += y.numel()
    return loss_sum / max(seen, 1), correct / max(seen, 1)
