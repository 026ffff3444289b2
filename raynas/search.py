"""One differentiable architecture search, epoch by epoch: the method-agnostic bilevel loop.

Each step first updates the architecture parameters on a batch of the architecture split (first or second
order, :mod:`raynas.bilevel`), then the supernet weights on a batch of the weight split (Liu et al.,
DARTS, ICLR 2019); an objective may ask for the other order (``arch_after_weights``: E2NAS' released code).
After each epoch the search evaluates the supernet and the derived architecture (with the weights it
inherits from the supernet) on the architecture split and derives the current genotype.

Evaluation passes use batch statistics in BatchNorm (as DARTS-PT's released code does), leaving the
running statistics untouched, so that evaluating never changes the state a resumed search continues from.

``get_state``/``set_state`` hold everything needed to continue bit for bit on the CPU: weights,
architecture parameters, both optimizers, the schedule, the objective's state and every RNG state;
batch order depends only on ``(seed, epoch)`` (:class:`raynas.data.EpochLoader`).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from typing import Any, Iterable, Iterator, Sequence, cast

import torch
from torch import nn

from raynas.bilevel import arch_gradient_first_order, arch_gradient_second_order
from raynas.config.schema import ExperimentConfig
from raynas.data import EpochLoader, load_data
from raynas.data.loader import derive_seed
from raynas.distributed import ShardComm, sync_batchnorm
from raynas.errors import SearchDivergedError
from raynas.flatness import arch_hessian_eigenvalue, discretization_gap
from raynas.objectives import SearchEnv, StepContext, build_objective, prepare_supernet
from raynas.ranking import RANK_METRICS, RANK_TIME_COLUMNS
from raynas.ranking.metrics import (detached_copy, finetune, mean_loss_acc, neighborhood, preserved_rng,
                                    recalibrate_batchnorm, used_parameters)
from raynas.selection import SELECTIONS
from raynas.spaces import Genotype, get_space
from raynas.supernet import discrete_weights
from raynas.runtime import capture_rng_state, pick_device, restore_rng_state, seed_everything
from raynas.supernet.base import Supernet
from raynas.supernet.build import build_supernet
from raynas.supernet.evaluation import evaluation_sums
from raynas.supernet.projection import Projection


#: purpose tag of the rank metrics' batch stream (:func:`raynas.data.loader.derive_seed`)
RANK_SALT = 1001
#: at epoch e the bn re-estimation reads pass e * RANK_PASSES of the rank metrics' batch stream and the fine-tune
#: the passes after it (up to RANK_PASSES - 1): every epoch's batches of its own
RANK_PASSES = 100_000


class Search:
    """A differentiable search built from one trial's :class:`ExperimentConfig`.

    Owns its data, supernet, objective, optimizers and selection; ``run_epoch`` trains one epoch and
    returns the report of the contract in ``docs/architecture.md``. One instance per trial, single-threaded.

    As shard ``rank`` of ``world_size`` (an initialised ``torch.distributed`` group, see
    :mod:`raynas.actors`) it trains on its slice of every global batch with synchronised batch norm and
    gradients averaged over the shards, so every shard holds the state one process would on the whole batch;
    evaluation and training metrics are summed over the shards too. Every shard must call the same methods.
    """

    def __init__(self, cfg: ExperimentConfig, *, device: torch.device | None = None, rank: int = 0,
                 world_size: int = 1) -> None:
        self.cfg = cfg
        s = cfg.search
        if s.threads:
            torch.set_num_threads(s.threads)
        seed_everything(s.seed)
        self.device = device or pick_device(s.device)
        self.space = get_space(cfg.space)
        self.data = load_data(cfg.data)
        self.model = build_supernet(cfg, self.data.num_classes, self.data.in_channels).to(self.device)
        prepare_supernet(cfg, self.model, self.space, self.device)  # e.g. E2NAS' latent parameterisation
        self.shards = ShardComm(rank, world_size)
        if self.shards.active:
            self.model = cast(Supernet, sync_batchnorm(self.model, self.device))  # the same module, converted
        self.objective = build_objective(cfg, SearchEnv(space=self.space, num_classes=self.data.num_classes,
                                                        in_channels=self.data.in_channels, device=self.device,
                                                        rank=rank, world_size=world_size))
        selection_cls = SELECTIONS.get(cfg.selection.name)
        self.selection = selection_cls.from_config(cfg.selection, seed=s.seed, objectives=cfg.objectives)
        #: epochs of the selection stage after ``search.epochs`` (0: the selection has no stage)
        self.stage_epochs = selection_cls.stage_epochs(cfg.selection, self.space)
        if self.stage_epochs:
            self.model.projection = Projection(self.space)
        self.weight_optimizer = torch.optim.SGD(self.model.weight_parameters(), lr=s.weight_lr,
                                                momentum=s.weight_momentum, weight_decay=s.weight_decay)
        self.arch_optimizer = torch.optim.Adam(self.model.arch_parameters(), lr=s.arch_lr,
                                               betas=(s.arch_beta1, s.arch_beta2),
                                               weight_decay=s.arch_weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.weight_optimizer, T_max=s.epochs,
                                                                    eta_min=s.weight_lr_min)
        workers = cfg.data.num_workers
        self.train_loader = EpochLoader(self.data.train, s.batch_size, shuffle=True, seed=s.seed,
                                        num_workers=workers)
        self.val_loader = EpochLoader(self.data.val, s.batch_size, shuffle=True, seed=s.seed + 1,
                                      num_workers=workers)
        self.eval_loader = EpochLoader(self.data.val, s.batch_size, shuffle=False, seed=0, num_workers=workers)
        #: training batches of the rank metrics (bn, finetune): a stream of their own, never the search's
        self.rank_loader = EpochLoader(self.data.train, s.batch_size, shuffle=True,
                                       seed=derive_seed(s.seed, RANK_SALT), num_workers=workers)
        self.candidate_evaluator: Any = None  #: evaluates a stage's candidates (built when the stage starts)
        self.steps_per_epoch = min(len(self.train_loader), s.steps_per_epoch or len(self.train_loader))
        self.epoch = 0  # finished epochs
        self.genotype: Genotype | None = None
        self.owner: str | None = None  #: the trial that owns this search (saved in the state: PBT lineage)
        self.step_seconds: list[float] = []  #: wall time of each step of the last epoch (benchmarks)

    # ----------------------------------------------------------------------------------------- training
    def run_epoch(self) -> dict[str, Any]:
        """Train one epoch, evaluate, derive the genotype; return the epoch's report.

        After ``search.epochs`` come the selection stage's epochs (if it has any): each starts with the
        decisions due then (reported under ``decisions``) and fine-tunes the supernet unless the selection
        says not to.
        """
        s = self.cfg.search
        start = time.perf_counter()
        decisions = None
        train = True
        if self.epoch >= s.epochs:
            stage_epoch = self.epoch - s.epochs
            if stage_epoch == 0:
                self._start_stage()
            decisions = self.selection.decide(self.model, stage_epoch, self.evaluate_candidates)
            train = self.selection.finetunes(stage_epoch)
        weight_lr = self.weight_optimizer.param_groups[0]["lr"]
        ctx = StepContext(epoch=self.epoch, step=0, steps_per_epoch=self.steps_per_epoch, epochs=s.epochs,
                          weight_lr=weight_lr, device=self.device, reduce=self.shards.average_,
                          scale_loss=self.shards.scale_loss, seed=s.seed)
        train_iter = self.train_loader.epoch(self.epoch)
        val_iter = _repeat(self.val_loader, self.epoch) if len(self.val_loader) else None
        projection = self.model.projection
        undecided = projection is None or any(projection.undecided(c) for c in self.space.cell_types)
        update_arch = (train and self.epoch >= s.warmup_epochs and val_iter is not None and undecided
                       and self.objective.trains_architecture)
        # DARTS updates the architecture first in each step; E2NAS' released code the weights first
        arch_last = self.objective.arch_after_weights
        loss_sum = correct = seen = 0.0
        self.step_seconds = []
        self.model.train()
        steps = self.steps_per_epoch if train else 0
        batches = (self._to_device(self.shards.local(b)) for b in itertools.islice(train_iter, steps))
        for step, (train_batch, next_batch) in enumerate(_with_next(batches)):
            step_start = time.perf_counter()
            ctx.step = step
            if next_batch is not None:
                self.objective.prefetch(self.model, next_batch, ctx)
            if update_arch and not arch_last and val_iter is not None:
                self._arch_step(train_batch, self._to_device(self.shards.local(next(val_iter))), ctx)
            loss, logits = self._weight_step(train_batch, ctx)
            self.objective.after_weight_step(self.model, train_batch, ctx)
            if update_arch and arch_last and val_iter is not None:
                self._arch_step(train_batch, self._to_device(self.shards.local(next(val_iter))), ctx)
            n = train_batch[1].numel()
            if n:  # a shard's slice of a short last batch may be empty
                loss_sum += loss * n
                correct += (logits.argmax(1) == train_batch[1]).sum().item()
                seen += n
            self.step_seconds.append(time.perf_counter() - step_start)
        loss_sum, correct, seen = self.shards.sum_([loss_sum, correct, seen])
        if train:
            self.scheduler.step()
        extra = self.objective.on_epoch_end(self.model, ctx)
        self.epoch += 1
        self.genotype = self.selection.select(self.model, self.data, ctx)
        timer = time.perf_counter()
        val_loss, val_acc = self.evaluate(self.eval_loader)
        val_time = time.perf_counter() - timer
        derived = discrete_weights(self.space, self.space.choices_from_genotype(self.genotype), device=self.device)
        if s.eval_derived:
            timer = time.perf_counter()
            derived_loss, derived_acc = self.evaluate(self.eval_loader, derived)
            derived_time = time.perf_counter() - timer
        else:
            derived_loss = derived_acc = derived_time = math.nan
        report: dict[str, Any] = {
            "epoch": self.epoch,
            "train_loss": loss_sum / seen if seen else math.nan, "train_acc": correct / seen if seen else math.nan,
            "val_loss": val_loss, "val_acc": val_acc,
            "derived_val_loss": derived_loss, "derived_val_acc": derived_acc,
            "val_time_s": val_time, "derived_val_time_s": derived_time,
            "weight_lr": weight_lr if train else 0.0,
            "arch_lr": self.arch_optimizer.param_groups[0]["lr"] if update_arch else 0.0,
            "epoch_time_s": time.perf_counter() - start,
            "genotype": str(self.genotype),
            "num_skip": self.genotype.count("skip_connect", cell=self.space.cell_types[0]),
            "connected": bool(self.space.is_connected(self.genotype)),
            "alphas": self.alphas_long(),
            "space": self.cfg.space, "method": self.cfg.method, "seed": s.seed,
            "reported_at": time.time(),
            "state_fingerprint": self.fingerprint(),
        }
        report["discretization_gap"] = discretization_gap(val_acc, derived_acc)
        report.update(self.rank_metrics(derived, (derived_loss, derived_acc)))
        if s.sharpness_every and self.epoch % s.sharpness_every == 0:
            report["arch_sharpness"] = self.arch_sharpness()
        if projection is not None:
            report["decided_edges"] = projection.decided_count()
        if decisions is not None:
            report["decisions"] = decisions
        report.update(extra)
        return report

    def rank_metrics(self, derived: dict[str, torch.Tensor],
                     derived_result: tuple[float, float]) -> dict[str, float]:
        """The extra ranking metrics of ``search.rank_metrics`` (:mod:`raynas.ranking`) for the derived cell
        (one-hot ``derived`` weights; ``derived_result`` its ``(loss, acc)`` as ``derived_val_acc`` measured it),
        and the seconds each took; NaN on epochs between measurements (every ``search.rank_metrics_every``
        epochs and at the last). Changes neither the search's weights, statistics nor any RNG state."""
        s = self.cfg.search
        kinds = [kind for kind in RANK_METRICS if kind in s.rank_metrics]  # the documented order
        if not kinds:
            return {}
        if self.epoch % s.rank_metrics_every and not self.done:
            return {column: math.nan for kind in kinds for column in (*RANK_METRICS[kind], RANK_TIME_COLUMNS[kind])}
        out: dict[str, float] = {}
        with preserved_rng(self.device):
            for kind in kinds:
                timer = time.perf_counter()
                values = self._rank_metric(kind, derived, derived_result)
                out.update(zip(RANK_METRICS[kind], values))
                out[RANK_TIME_COLUMNS[kind]] = time.perf_counter() - timer
        return out

    def _rank_metric(self, kind: str, derived: dict[str, torch.Tensor],
                     derived_result: tuple[float, float]) -> tuple[float, ...]:
        """The values of one :data:`raynas.ranking.RANK_METRICS` kind, in its columns' order."""
        s = self.cfg.search
        cap = s.rank_eval_batches
        if kind == "params":
            x, _ = next(iter(self.eval_loader.epoch(0)))
            return (float(used_parameters(self.model, derived, x.to(self.device))),)
        if kind == "neighborhood":
            if self.genotype is None:  # rank metrics follow the epoch's derivation, which sets it
                raise RuntimeError("the neighborhood rank metric needs the epoch's derived genotype")
            members = [derived] + [
                discrete_weights(self.space, self.space.choices_from_genotype(g), device=self.device)
                for g in neighborhood(self.space, self.genotype, s.rank_neighbors, seed=s.seed, epoch=self.epoch)]
            results = [derived_result if i == 0 and cap is None and not math.isnan(derived_result[1])
                       else self.evaluate(self.eval_loader, w, max_batches=cap) for i, w in enumerate(members)]
            loss, acc = mean_loss_acc(results)
            return acc, loss
        copy = detached_copy(self.model)
        if kind == "bn":
            bn_batches = itertools.islice(self.rank_loader.epoch(self.epoch * RANK_PASSES), s.rank_bn_batches)
            recalibrate_batchnorm(copy, derived, bn_batches, self.device)
            loss, acc = self._evaluate_model(copy, derived, batch_stats=False, max_batches=cap)
        else:  # finetune
            batches = itertools.chain.from_iterable(
                self.rank_loader.epoch(self.epoch * RANK_PASSES + 1 + k) for k in range(RANK_PASSES - 1))
            finetune(copy, derived, batches, self.device, steps=s.rank_finetune_steps,
                     lr=s.rank_finetune_lr or s.weight_lr, momentum=s.weight_momentum, weight_decay=s.weight_decay,
                     grad_clip=s.grad_clip)
            loss, acc = self._evaluate_model(copy, derived, batch_stats=True, max_batches=cap)
        return acc, loss

    def arch_sharpness(self) -> float:
        """Dominant Hessian eigenvalue of the architecture loss w.r.t. the alphas on the first batch of the
        architecture split (:func:`raynas.flatness.arch_hessian_eigenvalue`; this shard's slice when sharded)."""
        batch = self._to_device(self.shards.local(next(iter(self.eval_loader.epoch(0)))))
        return arch_hessian_eigenvalue(self.model, batch, iters=self.cfg.search.sharpness_iters,
                                       seed=self.cfg.search.seed)

    # ------------------------------------------------------------------------------------ selection stage
    def _start_stage(self) -> None:
        """Restart the weight optimizer for the selection stage's fine-tuning (DARTS-PT: lr / 10).

        Fresh momentum at ``search.weight_lr * selection.perturbation.finetune_lr_factor``, kept there
        (``selection.perturbation.finetune_lr_schedule: constant``) or annealed to ``search.weight_lr_min`` over the
        stage's fine-tuning epochs (``cosine``); the architecture optimizer carries on.
        """
        s, pt = self.cfg.search, self.cfg.selection.perturbation
        lr = s.weight_lr * pt.finetune_lr_factor
        self.weight_optimizer = torch.optim.SGD(self.model.weight_parameters(), lr=lr, momentum=s.weight_momentum,
                                                weight_decay=s.weight_decay)
        finetune_epochs = sum(self.selection.finetunes(k) for k in range(self.stage_epochs))
        # constant: a cosine from lr to lr, which is lr exactly at every step; one scheduler class for both
        # schedules (and the search's), so a checkpoint saved mid-stage loads into the scheduler that the
        # constructor builds, with the stage's eta_min and T_max
        eta_min = min(s.weight_lr_min, lr) if pt.finetune_lr_schedule == "cosine" else lr
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.weight_optimizer, T_max=max(finetune_epochs, 1), eta_min=eta_min)

    def evaluate_candidates(self, candidates: Sequence[dict[str, torch.Tensor]]) -> list[tuple[float, float]]:
        """``(loss, accuracy)`` of the supernet on the architecture split with each candidate's weights.

        Runs in this process, or on ``selection.workers`` Ray actors (:mod:`raynas.selection.parallel`) that
        keep the supernet across decisions and are killed by :meth:`close`; both give the same numbers.
        """
        sel = self.cfg.selection
        if sel.workers > 1:
            if self.candidate_evaluator is None:
                from raynas.selection.parallel import ParallelEvaluator

                self.candidate_evaluator = ParallelEvaluator(self.cfg, self.data.val,
                                                             num_classes=self.data.num_classes,
                                                             in_channels=self.data.in_channels)
            return self.candidate_evaluator(self.model, candidates)
        return [self.evaluate(self.eval_loader, weights, batch_stats=sel.batch_stats, max_batches=sel.eval_batches)
                for weights in candidates]

    def _to_device(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def _arch_step(self, train_batch: Any, val_batch: Any, ctx: StepContext) -> None:
        self.arch_optimizer.zero_grad(set_to_none=True)
        if self.cfg.search.order == 2:
            loss = arch_gradient_second_order(self.model, self.objective, train_batch, val_batch,
                                              self.weight_optimizer, ctx, eps=self.cfg.search.unrolled_eps)
        else:
            loss = arch_gradient_first_order(self.model, self.objective, val_batch, ctx)
        self._check_finite("architecture", loss, ctx)
        # the gradient functions above set every architecture parameter's .grad
        extra = self.objective.arch_hypergradient(self.model, train_batch, val_batch, self.weight_optimizer, ctx)
        weight = self.objective.arch_loss_weight
        alphas = self.model.arch_parameters()
        grads: list[torch.Tensor] = []  # each parameter's .grad itself: changed in place below
        for p in alphas:
            if p.grad is None:
                raise RuntimeError("an architecture parameter got no gradient from the architecture step")
            grads.append(p.grad)
        if weight != 1.0:
            for grad in grads:
                grad.mul_(weight)
        if extra is not None:
            for grad, g in zip(grads, extra):
                grad.add_(g)
            if not all(bool(torch.isfinite(grad).all()) for grad in grads):
                self._check_finite("architecture hypergradient", math.nan, ctx)
        self.arch_optimizer.step()

    def _check_finite(self, which: str, loss: float, ctx: StepContext) -> None:
        if not math.isfinite(loss):
            raise SearchDivergedError(f"{which} loss is {loss} at epoch {ctx.epoch + 1} step {ctx.step + 1}: "
                                      "the search diverged (lower search.weight_lr / search.arch_lr)")

    def _weight_step(self, batch: Any, ctx: StepContext) -> tuple[float, torch.Tensor]:
        outputs: list[torch.Tensor] = []
        # The first forward of the weight step is the main model's; keep its logits for training accuracy
        # so that objectives return only their loss.
        hook = self.model.register_forward_hook(lambda m, i, o: outputs.append(o.detach()) if not outputs else None)
        try:
            self.weight_optimizer.zero_grad(set_to_none=True)
            with self.model.frozen_architecture():  # its architecture gradient would be thrown away below
                loss = self.objective.weight_loss(self.model, batch, ctx)
            scaled = ctx.scale_loss(loss, batch)
            scaled.backward()
        finally:
            hook.remove()
        for p in self.model.arch_parameters():
            p.grad = None  # the weight step must not move the architecture
        total = scaled.detach().reshape(1).clone()  # averaged with the gradients: the whole batch's loss
        ctx.reduce([*(p.grad for p in self.model.weight_parameters() if p.grad is not None), total])
        self._check_finite("weight", float(total), ctx)
        if self.cfg.search.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.weight_parameters(), self.cfg.search.grad_clip)
        self.weight_optimizer.step()
        return loss.item(), outputs[0]

    def evaluate(self, loader: EpochLoader, weights: dict[str, torch.Tensor] | None = None, *,
                 batch_stats: bool = True, max_batches: int | None = None) -> tuple[float, float]:
        """Mean loss and accuracy of the supernet (or of ``weights``' architecture) over ``loader``.

        ``batch_stats`` False uses BatchNorm running statistics (eval mode); ``max_batches`` caps the batches.
        """
        batches = (self.shards.local(batch) for batch in itertools.islice(loader.epoch(0), max_batches))
        sums = evaluation_sums(self.model, batches, weights, self.device, batch_stats=batch_stats)
        loss_sum, correct, seen = self.shards.sum_(list(sums))
        return loss_sum / max(seen, 1), correct / max(seen, 1)

    def _evaluate_model(self, model: nn.Module, weights: dict[str, torch.Tensor], *, batch_stats: bool,
                        max_batches: int | None) -> tuple[float, float]:
        """:meth:`evaluate` of another ``model`` (a copy of the supernet) on the architecture split."""
        batches = itertools.islice(self.eval_loader.epoch(0), max_batches)
        loss_sum, correct, seen = evaluation_sums(model, batches, weights, self.device, batch_stats=batch_stats)
        return loss_sum / max(seen, 1), correct / max(seen, 1)

    def alphas_long(self) -> dict[str, list]:
        """The architecture parameters in long format (one entry per cell, edge and op).

        E2NAS: ``alpha`` is the decoder's op logit and ``weight`` its softmax over the ops a derived cell may
        use (the decoded op is the argmax of each kept edge's row).
        """
        columns: dict[str, list] = {k: [] for k in ("cell", "edge", "src", "dst", "op", "alpha", "weight")}
        with torch.no_grad():
            if self.model.latent is not None:  # E2NAS: the decoder's op logits and their softmax
                decoded = self.model.latent.probabilities()
                alphas = {c: logits.cpu() for c, (logits, _) in decoded.items()}
                weights = {c: p.cpu() for c, (_, p) in decoded.items()}
            else:
                alphas = {c: self.model.alphas[c].detach().cpu() for c in self.space.cell_types}
                weights = {c: w.cpu() for c, w in self.model.arch_weights().items()}
            for cell in self.space.cell_types:
                raw = alphas[cell]
                for e, (src, dst) in enumerate(self.space.edges(cell)):
                    for k, op in enumerate(self.space.edge_ops(cell, e)):
                        columns["cell"].append(cell)
                        columns["edge"].append(e)
                        columns["src"].append(src)
                        columns["dst"].append(dst)
                        columns["op"].append(op)
                        columns["alpha"].append(float(raw[e, k]))
                        columns["weight"].append(float(weights[cell][e, k]))
        return columns

    @property
    def done(self) -> bool:
        """Whether every configured epoch has run, the selection stage's included."""
        return self.epoch >= self.cfg.search.epochs + self.stage_epochs

    def close(self) -> None:
        """Release what the search holds outside its process (teacher and selection actors); idempotent."""
        self.objective.close()
        if self.candidate_evaluator is not None:
            self.candidate_evaluator.close()

    # -------------------------------------------------------------------------------------- checkpoints
    def get_state(self) -> dict[str, Any]:
        """Everything needed to resume; loadable with ``torch.load(..., weights_only=True)``.

        ``owner`` (the trial that saved it) and ``fingerprint`` record lineage; :meth:`set_state` ignores them.
        """
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "weight_optimizer": self.weight_optimizer.state_dict(),
            "arch_optimizer": self.arch_optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "objective": self.objective.get_state(),
            "genotype": str(self.genotype) if self.genotype is not None else None,
            "projection": self.model.projection.get_state() if self.model.projection is not None else None,
            "owner": self.owner,
            "fingerprint": self.fingerprint(),
            "autoencoder": self.model.latent.autoencoder_hash if self.model.latent is not None else None,
            "rng": capture_rng_state(),
        }

    def fingerprint(self) -> int:
        """A short hash of the architecture parameters (alphas, or E2NAS' latents; 52 bits, exact as a float):
        where a state came from.

        Reported each epoch as ``state_fingerprint`` and stored in :meth:`get_state`, so a trial that
        restored another trial's checkpoint can prove which epoch of which trial its state is.
        """
        digest = hashlib.sha256()
        for param in self.model.arch_parameters():
            digest.update(param.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return int(digest.hexdigest()[:13], 16)

    def apply_hyperparameters(self) -> None:
        """Apply this search's own meta-hyperparameters to the optimizers and schedule, keeping their state.

        After :meth:`set_state` loaded another trial's state (a PBT exploit), the optimizers hold that
        trial's settings. This sets ``search.arch_lr``, the Adam betas and weight decay, the weight momentum
        and weight decay, and the cosine schedule of ``search.weight_lr`` to ``search.weight_lr_min`` over
        ``search.epochs`` (the current weight lr becomes that schedule's value at the current epoch). Adam's
        moments and the momentum buffers are kept.
        """
        s = self.cfg.search
        for group in self.arch_optimizer.param_groups:
            group.update(lr=s.arch_lr, betas=(s.arch_beta1, s.arch_beta2), weight_decay=s.arch_weight_decay)
        schedule = self.scheduler
        schedule.base_lrs = [s.weight_lr] * len(self.weight_optimizer.param_groups)
        schedule.eta_min, schedule.T_max = s.weight_lr_min, s.epochs
        cosine = (1 + math.cos(math.pi * schedule.last_epoch / s.epochs)) / 2
        for group in self.weight_optimizer.param_groups:
            group.update(initial_lr=s.weight_lr, momentum=s.weight_momentum, weight_decay=s.weight_decay,
                         lr=s.weight_lr_min + (s.weight_lr - s.weight_lr_min) * cosine)

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""
        if self.model.latent is not None:
            self.model.latent.check_autoencoder(state.get("autoencoder") or "")
        self.epoch = int(state["epoch"])
        self.model.load_state_dict(state["model"])
        self.weight_optimizer.load_state_dict(state["weight_optimizer"])
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.objective.set_state(state["objective"])
        self.genotype = self.space.parse_genotype(state["genotype"]) if state["genotype"] else None
        if self.model.projection is not None:
            self.model.projection.set_state(state.get("projection"))
        restore_rng_state(state["rng"])


def _with_next(items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
    """``(item, next item or None)`` for each item: one step of look-ahead for :meth:`Objective.prefetch`."""
    it = iter(items)
    current = next(it, None)
    while current is not None:
        following = next(it, None)
        yield current, following
        current = following


def _repeat(loader: EpochLoader, epoch: int) -> Iterator[Any]:
    """The batches of ``epoch``, over and over: the architecture split may be shorter than the weight split."""
    while True:
        yield from loader.epoch(epoch)
