"""Teacher snapshots held as supernet modules in one process, and the vote sums they answer with.

SD-DARTS' teachers (:mod:`raynas.objectives.sd`) live in a :class:`TeacherPool`: in the trial's own process
(``objectives.sd.placement: local``) or in teacher actors (``actor``, :mod:`raynas.actors.teacher`). Either
answers a batch with the :data:`Sums` of its teachers' tempered probabilities and argmax votes; the sums of
several holders add up (:func:`merge_sums`), so where a teacher lives does not change the vote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from torch import nn

#: ``(sum over teachers of softmax(z_k / tau), sum over teachers of onehot(argmax z_k))``, each ``[N, C]``
Sums = tuple[torch.Tensor, torch.Tensor]


def sum_votes(teacher_logits: Sequence[torch.Tensor], temperature: float) -> Sums:
    """Summed tempered probabilities and argmax votes of teachers' logits (each ``[N, C]``), in the given order."""
    prob_sum: Optional[torch.Tensor] = None
    votes: Optional[torch.Tensor] = None
    for z in teacher_logits:
        p = F.softmax(z / temperature, dim=1)
        v = F.one_hot(z.argmax(dim=1), z.shape[1]).to(p.dtype)
        prob_sum = p if prob_sum is None else prob_sum + p
        votes = v if votes is None else votes + v
    if prob_sum is None or votes is None:
        raise ValueError("sum_votes needs at least one teacher's logits")
    return prob_sum, votes


def merge_sums(parts: Iterable[Optional[Sums]]) -> Sums:
    """The sums of several holders' partial :data:`Sums` (None: a holder without teachers), in order."""
    total: Optional[Sums] = None
    for part in parts:
        if part is None:
            continue
        total = part if total is None else (total[0] + part[0], total[1] + part[1])
    if total is None:
        raise ValueError("no teacher answered")
    return total


class TeacherPool:
    """Snapshots held as supernet modules in one process (the trial's or a teacher actor's).

    ``build`` makes an empty supernet (called with torch's global RNG state saved and restored, so holding
    teachers never changes the search's random stream); modules live on ``device`` in eval mode and are
    reused when a snapshot is forgotten. Single-threaded.
    """

    def __init__(self, build: Callable[[], "nn.Module"], device: torch.device, temperature: float) -> None:
        self._build = build
        self.device = torch.device(device)
        self.temperature = float(temperature)
        self._held: dict[int, tuple["nn.Module", dict[str, torch.Tensor]]] = {}
        self._spare: list["nn.Module"] = []

    @property
    def tags(self) -> list[int]:
        """Tags of the held snapshots, oldest first."""
        return sorted(self._held)

    def load(self, tag: int, model_state: Mapping[str, torch.Tensor], arch_weights: Mapping[str, torch.Tensor]) -> None:
        """Hold a snapshot (copied) under ``tag``, in a spare module if there is one."""
        self.forget(tag)
        module = self._spare.pop() if self._spare else self._new_module()
        module.load_state_dict(model_state)
        weights = {cell: w.detach().to(self.device).clone() for cell, w in arch_weights.items()}
        self._held[int(tag)] = (module, weights)

    def forget(self, tag: int) -> None:
        """Stop holding ``tag`` (nothing if not held); its module becomes spare."""
        entry = self._held.pop(int(tag), None)
        if entry is not None:
            self._spare.append(entry[0])

    def clear(self) -> None:
        """Forget every snapshot."""
        for tag in self.tags:
            self.forget(tag)

    def answer(self, x: torch.Tensor, tags: Iterable[int]) -> Optional[Sums]:
        """:func:`sum_votes` of the held teachers among ``tags`` (oldest first) on ``x``; None if none is held."""
        chosen = [t for t in sorted(tags) if t in self._held]
        if not chosen:
            return None
        x = x.to(self.device)
        with torch.no_grad():
            logits = [module(x, weights) for module, weights in (self._held[t] for t in chosen)]
        return sum_votes(logits, self.temperature)

    def snapshot(self, tag: int) -> dict[str, Any]:
        """A CPU copy of the snapshot ``tag``: ``{"model": state_dict, "arch_weights": {cell: tensor}}``."""
        module, weights = self._held[int(tag)]
        return {"model": {k: v.detach().cpu().clone() for k, v in module.state_dict().items()},
                "arch_weights": {cell: w.cpu().clone() for cell, w in weights.items()}}

    def _new_module(self) -> "nn.Module":
        with torch.random.fork_rng(devices=[]):
            module = self._build()
        module.to(self.device).eval()
        for p in module.parameters():
            p.requires_grad_(False)
        return module
