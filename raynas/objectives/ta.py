"""TA-DARTS: a tri-level search that encourages transferability (Sheth, Xie, "Improving Differentiable
Neural Architecture Search by Encouraging Transferability", ICLR 2023).

[paper] End to end, three levels: (1) the main supernet's weights train on the training loss; (2) knowledge
moves from the main model to an auxiliary model by matching quadruple relative similarities (QRS) of their
representations; (3) the architecture is updated to maximise transferability, i.e. the auxiliary model's
validation performance after the transfer. The motivation is degenerate, skip-dominated architectures.

[recon] The paper's exact formulation was not available to us; this is the reconstruction of ``methods.md``,
every part configurable under ``objectives.ta``:

- ``W1*(A) = argmin L_train(W1, A)`` (the supernet's own weight step);
- ``W2*(W1*) = argmin L_train(W2) + lambda * L_QRS(W2; W1*)``: after every weight step the auxiliary model
  takes one SGD step on the same batch, towards the QRS of the updated supernet's penultimate features
  (:func:`raynas.objectives.qrs.qrs_loss`; quadruples drawn from (seed, step), the same on every shard);
- ``min_A L_val(W2*(W1*(A))) + gamma * L_val(W1*(A), A)``: the architecture step's gradient is ``gamma``
  times DARTS' (first or second order, as ``search.order`` says) plus the nested hypergradient of the
  auxiliary model's validation loss (:mod:`raynas.objectives.ta_hypergradient`). With ``hypergradient: none``
  (the first-order approximation of the auxiliary path) that term has zero gradient and only
  ``gamma * L_val`` acts.
- The auxiliary model is a CIFAR-style ResNet (:class:`raynas.networks.CifarResNet`, depth 20 by default) or
  the derived network of any genotype of a registered space; its features are the input of its
  ``classifier``. Its SGD learning rate follows the weights' cosine schedule
  (``aux_lr * weight_lr(t) / search.weight_lr``). ``L_train`` in the unrolled steps is the cross-entropy
  (terms that other objectives add to the weight step are not unrolled).

Defaults: lambda = gamma = 1, tau = 0.1, BCE matching, 1024 sampled quadruples per batch (methods.md,
[recon]; not the paper's verified values). Sharded, the auxiliary model is replicated on every shard (synced
BatchNorm, gradients averaged with the supernet's collectives) and each shard's QRS uses the quadruples
within its slice. The auxiliary model and its optimizer are part of the search's state.

Metrics per epoch: ``ta_qrs`` and ``ta_aux_loss`` (means over the auxiliary steps), ``ta_aux_val_loss``
(mean ``L_val(W2')`` over the architecture steps).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Callable, Optional, cast

import torch
from torch import nn

from raynas.config.schema import required_section
from raynas.objectives.base import Batch, SearchEnv, StepContext, Term
from raynas.objectives.qrs import qrs_loss
from raynas.objectives.ta_hypergradient import TransferProblem, transfer_hypergradient

if TYPE_CHECKING:
    from raynas.config.schema import ExperimentConfig, TAConfig
    from raynas.supernet.base import Supernet

#: the auxiliary model's seed offset from ``search.seed`` (it must not consume the search's random stream)
AUX_SEED_OFFSET = 7919


def build_aux_model(ta: "TAConfig", space: str, layers: int, num_classes: int, in_channels: int) -> nn.Module:
    """The auxiliary model of ``ta``: a CIFAR ResNet, or the derived network of ``ta.aux_genotype``."""
    if ta.aux == "resnet":
        from raynas.networks import CifarResNet

        return CifarResNet(ta.aux_depth, ta.aux_channels, num_classes, in_channels)
    from raynas.spaces import get_space

    aux_space = get_space(ta.aux_space or space)
    genotype = aux_space.parse_genotype(ta.aux_genotype or "")
    return aux_space.build_network(genotype, channels=ta.aux_channels, layers=ta.aux_layers or layers,
                                   num_classes=num_classes, in_channels=in_channels)


def classifier_features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input of ``net.classifier`` when ``net`` runs on ``x`` (``net.features`` where it exists)."""
    features = getattr(net, "features", None)
    if callable(features):
        return features(x)
    seen: list[torch.Tensor] = []
    classifier = net.classifier
    assert isinstance(classifier, nn.Module)  # every network of ours has its classifier layer
    handle = classifier.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    try:
        net(x)
    finally:
        handle.remove()
    return seen[0]


def seeded_qrs(seed: int, step: int, *, tau: float, matching: str, margin: float,
               quadruples: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The QRS loss of step ``step``: the same sampled quadruples at every call (and on every shard).

    Fewer than 3 samples (a shard's short slice) have no quadruple: the loss is then a graph-connected 0.
    """
    def loss(main: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        if main.shape[0] < 3:
            return (main.sum() + aux.sum()) * 0.0
        generator = torch.Generator().manual_seed(seed * 1_000_003 + step) if quadruples else None
        return qrs_loss(main, aux, tau=tau, matching=matching, margin=margin,
                        count=quadruples or None, generator=generator)
    return loss


class TransferTerm(Term):
    """TA-DARTS as a term: the auxiliary model's transfer step after each weight step, and the nested
    hypergradient of its validation loss on the architecture step (see the module)."""

    name = "ta"

    def __init__(self, ta: "TAConfig", aux: nn.Module, *, base_weight_lr: float, seed: int, eps: float,
                 device: torch.device, world_size: int = 1) -> None:
        self.ta = ta
        self.aux = aux.to(device)
        if world_size > 1:
            from raynas.distributed import sync_batchnorm

            self.aux = sync_batchnorm(self.aux, device)
        self.aux.train()
        self.optimizer = torch.optim.SGD(self.aux.parameters(), lr=ta.aux_lr, momentum=ta.aux_momentum,
                                         weight_decay=ta.aux_weight_decay)
        self.arch_loss_weight = ta.val_weight
        self.base_weight_lr = base_weight_lr
        self.seed = seed
        self.eps = eps
        self._reset_metrics()

    @classmethod
    def from_config(cls, cfg: "ExperimentConfig", env: SearchEnv) -> "TransferTerm":
        """The term of ``cfg.objectives.ta``; the auxiliary model is initialised from ``search.seed`` alone."""
        ta = required_section(cfg.objectives.ta, "objectives.ta")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.search.seed + AUX_SEED_OFFSET)
            aux = build_aux_model(ta, cfg.space, cfg.supernet.layers, env.num_classes, env.in_channels)
        return cls(ta, aux, base_weight_lr=cfg.search.weight_lr, seed=cfg.search.seed,
                   eps=cfg.search.unrolled_eps, device=env.device, world_size=env.world_size)

    # ------------------------------------------------------------------------------------------ pieces
    def aux_lr(self, ctx: StepContext) -> float:
        """The auxiliary learning rate now: ``aux_lr`` scaled like the weights' (cosine) schedule."""
        if self.base_weight_lr <= 0:
            return self.ta.aux_lr
        return self.ta.aux_lr * ctx.weight_lr / self.base_weight_lr

    def problem(self, model: "Supernet", weight_optimizer: torch.optim.Optimizer,
                ctx: StepContext) -> TransferProblem:
        """The lower levels of step ``ctx.global_step`` for :func:`transfer_hypergradient`."""
        ta = self.ta
        return TransferProblem(
            main=model, aux=self.aux,
            main_features=model.features,
            aux_features=lambda x: classifier_features(self.aux, x),
            aux_logits=lambda f: cast(nn.Module, self.aux.classifier)(f),  # every auxiliary network has one
            qrs=seeded_qrs(self.seed, ctx.global_step, tau=ta.tau, matching=ta.matching, margin=ta.margin,
                           quadruples=ta.quadruples),
            transfer_weight=ta.transfer_weight, main_optimizer=weight_optimizer, aux_optimizer=self.optimizer,
            main_lr=float(ctx.weight_lr), aux_lr=self.aux_lr(ctx))

    # ------------------------------------------------------------------------------------------- hooks
    def arch_hypergradient(self, model: "Supernet", train_batch: Batch, val_batch: Batch,
                           weight_optimizer: torch.optim.Optimizer,
                           ctx: StepContext) -> Optional[list[torch.Tensor]]:
        """The nested hypergradient of ``L_val(W2')`` (None with ``hypergradient: none``)."""
        if self.ta.hypergradient == "none":
            return None
        grads, val_loss = transfer_hypergradient(self.problem(model, weight_optimizer, ctx), train_batch,
                                                 val_batch, ctx, eps=self.eps)
        self._val_sum += val_loss
        self._val_steps += 1
        return grads

    def after_weight_step(self, model: "Supernet", batch: Batch, ctx: StepContext) -> None:
        """The transfer step: one SGD step of the auxiliary model on ``batch`` towards the updated supernet's
        features (computed with batch statistics, leaving the supernet's running statistics as they were)."""
        from raynas.supernet.evaluation import batch_stats_eval

        with batch_stats_eval(model):
            target = model.features(batch[0])
        problem = self.problem(model, self.optimizer, ctx)
        for group in self.optimizer.param_groups:
            group["lr"] = problem.aux_lr
        self.optimizer.zero_grad(set_to_none=True)
        ce, qrs = problem.aux_loss_parts(batch, target, ctx)
        (ce + self.ta.transfer_weight * qrs).backward()
        values = torch.stack([ce.detach(), qrs.detach()]).reshape(2)
        ctx.reduce([*(p.grad for p in self.aux.parameters() if p.grad is not None), values])
        self.optimizer.step()
        self._ce_sum += float(values[0])
        self._qrs_sum += float(values[1])
        self._steps += 1

    def on_epoch_end(self, model: "Supernet", ctx: StepContext) -> dict[str, float]:
        """``ta_aux_loss``, ``ta_qrs`` and ``ta_aux_val_loss`` of the epoch (when there were steps); then reset."""
        metrics: dict[str, float] = {}
        if self._steps:
            metrics["ta_aux_loss"] = self._ce_sum / self._steps
            metrics["ta_qrs"] = self._qrs_sum / self._steps
        if self._val_steps:
            metrics["ta_aux_val_loss"] = self._val_sum / self._val_steps
        self._reset_metrics()
        return metrics

    def _reset_metrics(self) -> None:
        self._ce_sum = self._qrs_sum = self._val_sum = 0.0
        self._steps = self._val_steps = 0

    # ------------------------------------------------------------------------------------------- state
    def get_state(self) -> dict[str, Any]:
        """The auxiliary model's state dict, its optimizer's and the epoch's running metric sums."""
        return {"aux": {k: v.detach().cpu().clone() for k, v in self.aux.state_dict().items()},
                "optimizer": copy.deepcopy(self.optimizer.state_dict()),  # its buffers change in place
                "metrics": {"ce_sum": self._ce_sum, "qrs_sum": self._qrs_sum, "val_sum": self._val_sum,
                            "steps": self._steps, "val_steps": self._val_steps}}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore the auxiliary model, its optimizer and the metric sums."""
        self.aux.load_state_dict(state["aux"])
        self.optimizer.load_state_dict(state["optimizer"])
        m = state.get("metrics", {})
        self._ce_sum, self._qrs_sum = float(m.get("ce_sum", 0.0)), float(m.get("qrs_sum", 0.0))
        self._val_sum = float(m.get("val_sum", 0.0))
        self._steps, self._val_steps = int(m.get("steps", 0)), int(m.get("val_steps", 0))
