"""SD-DARTS: self-distillation from voting teachers (Zhu, Li, Liu, Wang, "SD-DARTS: Self-Distillation
Differentiable Neural Architecture Search", arXiv 2302.05629, 2023).

[paper] Earlier snapshots of the same supernet teach the current one, to reduce the sharpness of the
supernet's loss and the gap between the supernet and the derived architecture. Several previous supernets
vote: their output probabilities are aggregated into the teacher prediction.

[recon] The paper's exact schedule and loss were not available to us; this module implements the
reconstruction of ``methods.md``, every part configurable under ``objectives.sd``:

- a FIFO of supernet snapshots: a snapshot is the supernet's ``state_dict()`` (weights, alphas, BatchNorm
  buffers) plus its architecture weights (softmax of the alphas with any selection projection applied),
  taken after the weight step of global step ``G`` when ``(G + 1) % interval == 0`` and tagged ``G``;
- the teachers of step ``G`` are the ``teachers`` (K) most recent snapshots with tag ``<= G - 2``
  (:func:`teacher_tags`), so the request for step ``G + 1``'s batch can be sent at the start of step ``G``
  and no answer depends on whether it was sent early; at most K + 1 snapshots are kept; before K such
  snapshots exist the term is off;
- a teacher answers in eval mode (BatchNorm running statistics) without gradients, so each sample's answer
  does not depend on the batch it came with (a shard's slice is answered as the whole batch would be);
- voting (:func:`combine_votes`): ``soft`` p_T = mean_k softmax(z_k / tau); ``hard`` the one-hot of the
  class most teachers put first (ties: the larger summed probability, then the lowest index);
- weight loss = CE + beta * tau^2 * KL(p_T || softmax(z / tau)), batch mean (:func:`distillation_loss`);
  with ``distill_arch`` the same term is added to the architecture step (teachers asked on its batch).

Defaults (methods.md, [recon], not the paper's verified values):

=================  ===========================================  =========
field              meaning                                      default
=================  ===========================================  =========
``teachers``       K, snapshots that vote                       3
``interval``       s, steps between snapshots                   steps per epoch // 4 (at least 1)
``temperature``    tau                                          4
``weight``         beta                                         0.5
``voting``         soft | hard                                  soft
``distill_arch``   distil on the architecture step too          false
=================  ===========================================  =========

Where the snapshots live (``placement``): ``local`` keeps K + 1 supernet modules in the trial's process
(:class:`LocalTeachers`); ``actor`` spreads them over ``actors`` Ray actors
(:class:`raynas.actors.teacher.TeacherGroup`), snapshot ``i`` on actor ``i mod actors``, asked one batch ahead
(:meth:`SelfDistillationTerm.prefetch`). Both hold snapshots in a :class:`TeacherPool` and merge their
partial answers with :func:`merge_sums`, so both give the same teacher prediction (bit for bit with one actor).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, Protocol, Sequence

import torch
import torch.nn.functional as F

from raynas.actors.teacher_pool import Sums, TeacherPool, merge_sums, sum_votes
from raynas.config.schema import required_section
from raynas.objectives.base import Batch, SearchEnv, StepContext, Term

if TYPE_CHECKING:

    from raynas.config.schema import ExperimentConfig
    from raynas.supernet.base import Supernet

VOTINGS = ("soft", "hard")
PLACEMENTS = ("local", "actor")

# ------------------------------------------------------------------------------------------ pure rules
def snapshot_due(global_step: int, interval: int) -> bool:
    """Whether a snapshot is taken after the weight step of ``global_step``."""
    return (global_step + 1) % interval == 0


def default_interval(steps_per_epoch: int) -> int:
    """A quarter of an epoch's steps, at least 1 (methods.md: s = one epoch's steps / 4)."""
    return max(1, int(steps_per_epoch) // 4)


def teacher_tags(tags: Iterable[int], step: int, count: int) -> Optional[list[int]]:
    """The ``count`` most recent of ``tags`` that are ``<= step - 2``, oldest first; None while fewer exist."""
    eligible = sorted(t for t in tags if t <= step - 2)
    return eligible[-count:] if len(eligible) >= count else None


def combine_votes(prob_sum: torch.Tensor, votes: torch.Tensor, count: int, voting: str) -> torch.Tensor:
    """The teacher prediction ``[N, C]`` of ``count`` teachers from their summed probabilities and votes.

    ``soft``: the mean probability. ``hard``: the one-hot of the class with the most votes; a tie goes to
    the tied class with the larger summed probability, then to the lowest index.
    """
    if voting == "soft":
        return prob_sum / count
    if voting == "hard":
        top = votes.max(dim=1, keepdim=True).values
        score = torch.where(votes == top, prob_sum, torch.full_like(prob_sum, float("-inf")))
        return F.one_hot(score.argmax(dim=1), prob_sum.shape[1]).to(prob_sum.dtype)
    raise ValueError(f"voting {voting!r}; valid: {', '.join(VOTINGS)}")


def vote(teacher_logits: Sequence[torch.Tensor], temperature: float, voting: str) -> torch.Tensor:
    """The teacher prediction of teachers' logits (:func:`sum_votes`, then :func:`combine_votes`)."""
    prob_sum, votes = sum_votes(teacher_logits, temperature)
    return combine_votes(prob_sum, votes, len(teacher_logits), voting)


def distillation_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float,
                      weight: float) -> torch.Tensor:
    """``weight * temperature^2 * KL(teacher_probs || softmax(student_logits / temperature))``, batch mean.

    ``xlogy`` makes zero teacher probabilities (hard votes) contribute zero. An empty batch gives 0.
    """
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    p = teacher_probs.to(log_q.dtype)
    kl = (torch.xlogy(p, p) - p * log_q).sum()
    return kl * (weight * temperature ** 2 / max(int(student_logits.shape[0]), 1))


# ------------------------------------------------------------------------------------------- holders
class Teachers(Protocol):
    """Where a search's snapshots live, as :class:`SelfDistillationTerm` uses them.

    Implemented by :class:`LocalTeachers` and :class:`raynas.actors.teacher.TeacherGroup`. Called from the search's
    thread only. ``request`` may return before the answer exists (``asynchronous``); ``collect`` then waits.
    A question sent before an ``add`` or ``drop`` is answered with the snapshots held when it was sent.
    """

    asynchronous: bool  #: whether asking a step early (``prefetch``) saves time

    def add(self, index: int, tag: int, model_state: Mapping[str, torch.Tensor],
            arch_weights: Mapping[str, torch.Tensor]) -> None:
        """Hold snapshot number ``index`` (the ``index``-th ever taken) under ``tag`` (copied)."""

    def drop(self, tag: int) -> None:
        """Forget the snapshot ``tag``."""

    def clear(self) -> None:
        """Forget every snapshot."""

    def request(self, x: torch.Tensor, tags: Sequence[int]) -> Any:
        """Ask the teachers ``tags`` about the inputs ``x``."""

    def collect(self, request: Any) -> Sums:
        """The :data:`Sums` answering a :meth:`request`."""

    def snapshots(self, tags: Sequence[int]) -> list[dict[str, Any]]:
        """``{"model": state_dict, "arch_weights": {cell: tensor}}`` of each of ``tags`` (CPU tensors)."""

    def close(self) -> None:
        """Release what is held outside the process; idempotent."""


class LocalTeachers:
    """Teachers in the trial's process (``placement: local``): one :class:`TeacherPool`, answered at once
    (:class:`Teachers`)."""

    asynchronous = False

    def __init__(self, pool: TeacherPool) -> None:
        self.pool = pool

    def add(self, index: int, tag: int, model_state: Mapping[str, torch.Tensor],
            arch_weights: Mapping[str, torch.Tensor]) -> None:
        """Hold snapshot number ``index`` (the ``index``-th ever taken) under ``tag``."""
        self.pool.load(tag, model_state, arch_weights)

    def drop(self, tag: int) -> None:
        """Forget the snapshot ``tag``."""
        self.pool.forget(tag)

    def clear(self) -> None:
        """Forget every snapshot."""
        self.pool.clear()

    def request(self, x: torch.Tensor, tags: Sequence[int]) -> Optional[Sums]:
        """The answer itself (computed now)."""
        return self.pool.answer(x, tags)

    def collect(self, request: Optional[Sums]) -> Sums:
        """The :data:`Sums` of a :meth:`request`."""
        return merge_sums([request])

    def snapshots(self, tags: Sequence[int]) -> list[dict[str, Any]]:
        """CPU copies of the snapshots ``tags`` (see :meth:`TeacherPool.snapshot`)."""
        return [self.pool.snapshot(t) for t in tags]

    def close(self) -> None:
        """Nothing outside the process to release."""


# ----------------------------------------------------------------------------------------------- term
@dataclass
class _Answer:
    """A question to the teachers about one batch and, once collected, their prediction."""

    tags: list[int]
    request: Any
    probs: Optional[torch.Tensor] = None


class SelfDistillationTerm(Term):
    """The SD-DARTS term: distillation from voting teacher snapshots on the weight step (and optionally the
    architecture step).

    ``teachers`` holds the snapshots (:class:`Teachers`: :class:`LocalTeachers` or
    :class:`raynas.actors.teacher.TeacherGroup`).
    Answers are cached per ``(step kind, global step)``, so a step that computes its weight loss several
    times (second-order DARTS) asks once. Metrics per epoch: ``sd_kl`` (mean distillation term of the
    weight steps where it was active; absent if none), ``sd_arch_kl`` (the same on architecture steps, with
    ``distill_arch``), ``sd_teachers`` (snapshots voting at the epoch's last step; 0 while off) and, with
    asynchronous teachers (actors), ``sd_wait_s`` (seconds the search waited for answers, the actors'
    start-up included in the first epoch that distils). Sharded, each shard reports its own slices (the
    report is rank 0's).
    """

    name = "sd"

    def __init__(self, teachers: Teachers, *, count: int = 3, interval: Optional[int] = None, temperature: float = 4.0,
                 weight: float = 0.5, voting: str = "soft", distill_arch: bool = False) -> None:
        if voting not in VOTINGS:
            raise ValueError(f"voting {voting!r}; valid: {', '.join(VOTINGS)}")
        self.teachers = teachers
        self.count = int(count)
        self.interval = None if interval is None else int(interval)
        self.temperature = float(temperature)
        self.weight = float(weight)
        self.voting = voting
        self.distill_arch = bool(distill_arch)
        self._held: list[tuple[int, int]] = []  # (tag, index) of the kept snapshots, oldest first
        self._taken = 0  # snapshots taken since the search began
        self._answers: dict[tuple[str, int], _Answer] = {}
        self._last: Optional[tuple[int, torch.Tensor]] = None  # (global step, weight term) of the last call
        self._reset_metrics()

    @classmethod
    def from_config(cls, cfg: "ExperimentConfig", env: SearchEnv) -> "SelfDistillationTerm":
        """The term of ``cfg.objectives.sd``, its teachers placed as ``placement`` says."""
        sd = required_section(cfg.objectives.sd, "objectives.sd")
        if sd.placement == "actor":
            from raynas.actors.teacher import TeacherGroup

            teachers: Teachers = TeacherGroup(cfg, num_classes=env.num_classes, in_channels=env.in_channels,
                                              rank=env.rank, world_size=env.world_size)
        elif sd.placement == "local":
            from raynas.supernet.build import build_supernet

            pool = TeacherPool(lambda: build_supernet(cfg, env.num_classes, env.in_channels), env.device,
                               sd.temperature)
            teachers = LocalTeachers(pool)
        else:
            raise ValueError(f"placement {sd.placement!r}; valid: {', '.join(PLACEMENTS)}")
        return cls(teachers, count=sd.teachers, interval=sd.interval, temperature=sd.temperature,
                   weight=sd.weight, voting=sd.voting, distill_arch=sd.distill_arch)

    # ------------------------------------------------------------------------------------ loss hooks
    def weight_term(self, model: "Supernet", batch: Batch, logits: Callable[[], torch.Tensor],
                    ctx: StepContext) -> Optional[torch.Tensor]:
        """The distillation term on the weight batch (None until K teachers are eligible)."""
        step = ctx.global_step
        tags = teacher_tags(self.held_tags, step, self.count)
        self._teachers_now = len(tags) if tags else 0
        if tags is None:
            return None
        probs = self._teacher_probs("weight", step, batch[0], tags)
        loss = distillation_loss(logits(), probs, self.temperature, self.weight)
        self._last = (step, loss.detach())
        return loss

    def arch_term(self, model: "Supernet", batch: Batch, logits: Callable[[], torch.Tensor],
                  ctx: StepContext) -> Optional[torch.Tensor]:
        """With ``distill_arch``: the distillation term on the architecture batch (teachers asked now)."""
        if not self.distill_arch:
            return None
        tags = teacher_tags(self.held_tags, ctx.global_step, self.count)
        if tags is None:
            return None
        probs = self._teacher_probs("arch", ctx.global_step, batch[0], tags)
        loss = distillation_loss(logits(), probs, self.temperature, self.weight)
        self._arch_sum += float(loss.detach())
        self._arch_steps += 1
        return loss

    def prefetch(self, model: "Supernet", next_batch: Batch, ctx: StepContext) -> None:
        """Asynchronous teachers: send the question about the next step's weight batch now."""
        if not self.teachers.asynchronous:
            return
        step = ctx.global_step + 1
        tags = teacher_tags(self.held_tags, step, self.count)
        if tags is not None and ("weight", step) not in self._answers:
            self._answers[("weight", step)] = _Answer(tags, self.teachers.request(next_batch[0], tags))

    def after_weight_step(self, model: "Supernet", batch: Batch, ctx: StepContext) -> None:
        """Count the step's term, drop answers no longer needed, and take a snapshot when one is due."""
        step = ctx.global_step
        if self._last is not None and self._last[0] == step:
            self._kl_sum += float(self._last[1])
            self._kl_steps += 1
        self._last = None
        self._answers = {key: a for key, a in self._answers.items() if key[1] > step}
        interval = self.interval or default_interval(ctx.steps_per_epoch)
        if snapshot_due(step, interval):
            self._snapshot(model, step)

    def on_epoch_end(self, model: "Supernet", ctx: StepContext) -> dict[str, float]:
        """``sd_kl``, ``sd_arch_kl``, ``sd_teachers`` and ``sd_wait_s`` of the epoch (see the class); then reset."""
        metrics: dict[str, float] = {"sd_teachers": float(self._teachers_now)}
        if self._kl_steps:
            metrics["sd_kl"] = self._kl_sum / self._kl_steps
        if self._arch_steps:
            metrics["sd_arch_kl"] = self._arch_sum / self._arch_steps
        if self.teachers.asynchronous:
            metrics["sd_wait_s"] = self._wait_s
        self._reset_metrics()
        return metrics

    # ------------------------------------------------------------------------------------- snapshots
    @property
    def held_tags(self) -> list[int]:
        """Tags of the kept snapshots, oldest first (at most ``count + 1``)."""
        return [tag for tag, _ in self._held]

    def _snapshot(self, model: "Supernet", step: int) -> None:
        """Keep the supernet as it is after the weight step of ``step``, forgetting the oldest beyond K + 1."""
        while len(self._held) > self.count:
            tag, _ = self._held.pop(0)
            self.teachers.drop(tag)  # first, so that the new snapshot can take its place
        with torch.no_grad():
            weights = {cell: w.detach() for cell, w in model.arch_weights().items()}
        self.teachers.add(self._taken, step, model.network_state_dict(), weights)
        self._held.append((step, self._taken))
        self._taken += 1

    def _teacher_probs(self, kind: str, step: int, x: torch.Tensor, tags: list[int]) -> torch.Tensor:
        """The teacher prediction for ``x`` at ``(kind, step)``: cached, collected if asked early, else asked now."""
        start = time.perf_counter()
        answer = self._answers.get((kind, step))
        if answer is None or answer.tags != tags:
            answer = _Answer(tags, self.teachers.request(x, tags))
            self._answers[(kind, step)] = answer
        if answer.probs is None:
            prob_sum, votes = self.teachers.collect(answer.request)
            answer.request = None
            answer.probs = combine_votes(prob_sum.to(x.device), votes.to(x.device), len(tags), self.voting)
            self._wait_s += time.perf_counter() - start
        return answer.probs

    # ---------------------------------------------------------------------------------------- state
    def get_state(self) -> dict[str, Any]:
        """The kept snapshots (``tag``, ``index``, ``model`` state dict, ``arch_weights``; CPU tensors), the
        snapshot counter and the epoch's running metric sums; plain types for ``weights_only`` loading."""
        tags = self.held_tags
        snapshots = [{"tag": tag, "index": index, **snap}
                     for (tag, index), snap in zip(self._held, self.teachers.snapshots(tags))]
        return {"snapshots": snapshots, "taken": self._taken,
                "metrics": {"kl_sum": self._kl_sum, "kl_steps": self._kl_steps, "arch_sum": self._arch_sum,
                            "arch_steps": self._arch_steps, "wait_s": self._wait_s,
                            "teachers": self._teachers_now}}

    def set_state(self, state: dict[str, Any]) -> None:
        """Hold exactly the snapshots of ``state`` (replacing any held now) and its counters."""
        self._answers = {}
        self._last = None
        self.teachers.clear()
        self._held = []
        for snap in sorted(state["snapshots"], key=lambda s: int(s["tag"])):
            tag, index = int(snap["tag"]), int(snap["index"])
            self.teachers.add(index, tag, snap["model"], snap["arch_weights"])
            self._held.append((tag, index))
        self._taken = int(state["taken"])
        m = state.get("metrics", {})
        self._kl_sum, self._kl_steps = float(m.get("kl_sum", 0.0)), int(m.get("kl_steps", 0))
        self._arch_sum, self._arch_steps = float(m.get("arch_sum", 0.0)), int(m.get("arch_steps", 0))
        self._wait_s, self._teachers_now = float(m.get("wait_s", 0.0)), int(m.get("teachers", 0))

    def close(self) -> None:
        """Release the teachers (kills teacher actors); idempotent."""
        self.teachers.close()

    def _reset_metrics(self) -> None:
        self._kl_sum, self._kl_steps = 0.0, 0
        self._arch_sum, self._arch_steps = 0.0, 0
        self._wait_s = 0.0
        self._teachers_now = 0
