"""E2NAS' two terms on a latent-space search: exploration enhancement and architecture complementation.

Zhang et al., "Differentiable Neural Architecture Search in Equivalent Space with Exploration Enhancement",
NeurIPS 2020. The search itself runs in the latent space of a pretrained cell autoencoder
(:class:`raynas.e2nas.latent.LatentArchitecture`, installed on the supernet by the search for
``method: e2nas``); this term changes what the two steps minimise.

Exploration enhancement (architecture step)::

    loss = (1 - eta) * L_val(a(z)) + eta * weight * density(z),   eta = 1 - sigmoid(10 * (2 * epoch / epochs - 1))

so early epochs explore and late ones exploit. [code] The released code keeps an archive of the last 50
architectures and computes the novelty of the current latent from a density fit to it, but as a detached
number, which only rescales the step (and Adam undoes most of a rescaling). [recon] Here (``exploration:
density``, the default) the density is differentiable: a Gaussian kernel density over the latent embeddings
(the encoder's means) of the last ``archive`` distinct architectures visited, with kernel width
``bandwidth`` in RMS latent units, ``density(z) = mean_k exp(-||z - e_k||^2 / (2 * D * bandwidth^2))`` over
the ``D`` latent dimensions of all cell types. Minimising it moves ``z`` away from the architectures the
search has just visited. ``exploration: detached`` is the released code's behaviour (``eta * (1 -
density)`` as a constant), ``none`` plain ``L_val``.

Architecture complementation (weight step)::

    loss = (1 - lam) * L(a_t) + lam / 2 * (L(a_{t-1}) + L(a_c))

with ``a_t`` the architecture of this step, ``a_{t-1}`` that of the previous weight step (``a_t`` at the first
one) and ``a_c`` the complementary architecture: a different op, drawn uniformly from ``(seed, step)``, on
every kept edge where ``a_t`` and ``a_{t-1}`` agree, ``a_t``'s op elsewhere; DARTS-like cells keep ``a_t``'s
inputs. [code] The released code computes the two extra losses but back-propagates only ``L(a_t)``; here all
three terms train the weights (the paper's intent: the supernet keeps the ops the search left behind). The
weight step runs the one-hot architectures without a gradient path to ``z``, so each runs one op per edge.

The estimator (``e2nas.estimator``, :mod:`raynas.e2nas.latent`) decides which cell a step trains and how
the architecture step's gradient reaches ``z``:

- ``ours``: the decoded cell, the architecture step before the weight step (DARTS' order), the archive of
  the last ``archive`` distinct cells;
- ``released`` ([code] the released code's ``search_func``): the weight step trains a cell drawn from the
  decoder (from ``(seed, step)``), then the architecture step runs another draw single-path with the
  gradient of ``softmax(z)`` reshaped to ``[edges, ops]``; the archive holds the cells of the last
  ``archive`` steps, repeats kept, and a step's cell joins it after that step's architecture update (the
  released code appends after ``a_optimizer.step()``).

Either way the exploration term is 0 until the archive holds ``novelty_after`` cells (ours 1; the released
code's 50: ``if len(arch_archive) < 50: Novelty = 0``), while ``L_val`` keeps its ``1 - eta`` factor.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from raynas.config.checks import novelty_after
from raynas.e2nas.encoding import DROPPED, layouts, one_hot, to_choices
from raynas.e2nas.latent import LatentArchitecture, architecture_hash
from raynas.errors import ConfigError
from raynas.objectives.base import Batch, SearchEnv, StepContext, Term
from raynas.objectives.na import step_generator

if TYPE_CHECKING:

    from raynas.config.schema import E2NASConfig, ExperimentConfig
    from raynas.spaces import SearchSpace
    from raynas.supernet.base import Supernet

#: the steepness of the exploration schedule (the released code's 10)
SCHEDULE_STEEPNESS = 10.0
Indices = dict[str, torch.Tensor]


def exploration_eta(epoch: int, epochs: int) -> float:
    """``1 - sigmoid(10 * (2 * epoch / epochs - 1))``: about 1 at the start, 0.5 halfway, about 0 at the end."""
    return 1.0 - 1.0 / (1.0 + math.exp(-SCHEDULE_STEEPNESS * (2.0 * epoch / max(epochs, 1) - 1.0)))


def complementary_indices(space: "SearchSpace", current: Indices, previous: Indices,
                          generator: torch.Generator) -> Indices:
    """``a_c``: per cell, a different allowed op (uniformly drawn) on every kept edge where ``current`` and
    ``previous`` hold the same op, ``current``'s op elsewhere (dropped edges stay dropped)."""
    out = {}
    for cell, layout in layouts(space).items():
        now, before = current[cell].tolist(), previous[cell].tolist()
        comp = list(now)
        for e, (a, b) in enumerate(zip(now, before)):
            if a == DROPPED or a != b:
                continue
            others = [k for k, ok in enumerate(layout.allowed[e]) if ok and k != a]
            if others:
                comp[e] = others[int(torch.randint(len(others), (1,), generator=generator))]
        out[cell] = torch.tensor(comp, dtype=torch.long)
    return out


def latent_of(model: "Supernet") -> LatentArchitecture:
    """The supernet's E2NAS latent (:meth:`E2NASTerm.prepare_supernet` installed it)."""
    latent = model.latent
    if not isinstance(latent, LatentArchitecture):
        raise TypeError("the E2NAS term needs a supernet searching in a latent space (E2NASTerm.prepare_supernet)")
    return latent


class E2NASTerm(Term):
    """Exploration enhancement on the architecture step and complementation on the weight step of a
    ``method: e2nas`` search (module docstring). Needs the supernet's latent (``model.latent``)."""

    name = "e2nas"
    replaces_arch_loss = True

    @classmethod
    def prepare_experiment(cls, cfg: "ExperimentConfig", trials: Sequence["ExperimentConfig"], directory: Path,
                           echo: Callable[[str], None]) -> "ExperimentConfig":
        """The autoencoder the population's E2NAS searches read, checked or pretrained now
        (:func:`raynas.e2nas.prepare.prepare_for_trials`)."""
        from raynas.e2nas.prepare import prepare_for_trials

        return prepare_for_trials(cfg, list(trials), directory, echo=echo)

    @classmethod
    def prepare_trial(cls, cfg: "ExperimentConfig") -> "ExperimentConfig":
        """With ``e2nas.pretrain_per_search``, the autoencoder of the search's seed
        (:func:`raynas.e2nas.prepare.search_autoencoder`)."""
        from raynas.e2nas.prepare import search_autoencoder

        return search_autoencoder(cfg)

    @classmethod
    def prepare_supernet(cls, cfg: "ExperimentConfig", model: "Supernet", space: Any,
                         device: "torch.device") -> None:
        """Search in the autoencoder's latent space: the supernet's architecture parameters become latents
        of ``cfg.e2nas.autoencoder`` (loaded on ``device``), drawn as ``init_scale * randn`` from the global RNG."""
        from raynas.e2nas.latent import LatentArchitecture
        from raynas.e2nas.vgae import load

        if not cfg.e2nas.autoencoder:
            raise ConfigError("e2nas.autoencoder is unset: `raynas search` pretrains one into the experiment "
                              "folder; a search built directly needs a file from `raynas e2nas pretrain SPACE "
                              "--out FILE`")
        model.use_latent(LatentArchitecture(load(cfg.e2nas.autoencoder, device=device), space,
                                            init_scale=cfg.e2nas.init_scale, estimator=cfg.e2nas.estimator))

    def __init__(self, cfg: "E2NASConfig", space: "SearchSpace") -> None:
        self.space = space
        self.complement = float(cfg.complement)
        self.exploration = cfg.exploration
        self.exploration_weight = float(cfg.exploration_weight)
        self.archive_size = int(cfg.archive)
        self.bandwidth = float(cfg.bandwidth)
        #: the released code's estimator (module docstring); False: ours
        self.released = cfg.estimator == "released"
        self.arch_after_weights = self.released
        #: archived cells below which the exploration term is 0
        self.novelty_after = novelty_after(cfg)
        self.previous: Optional[Indices] = None
        #: (architecture hash, latent embedding), oldest first (distinct hashes unless released)
        self.archive: list[tuple[int, torch.Tensor]] = []
        self.visited: set[int] = set()
        self._reset_metrics()
        self._step_density = math.nan
        self._step_complement = math.nan

    @classmethod
    def from_config(cls, cfg: "ExperimentConfig", env: SearchEnv) -> "E2NASTerm":
        """The term of ``cfg.e2nas``."""
        return cls(cfg.e2nas, env.space)

    def _reset_metrics(self) -> None:
        self._metrics = {"density": 0.0, "density_steps": 0, "complement": 0.0, "complement_steps": 0,
                         "changes": 0}

    @property
    def weight_loss_weight(self) -> float:  # type: ignore[override]
        """``1 - lam``: the share of the current architecture's loss in the weight step."""
        return 1.0 - self.complement

    # -- the step's cell ------------------------------------------------------------------------------
    def step_indices(self, model: "Supernet", ctx: StepContext) -> Indices:
        """The cell this step's weight update trains: the decoded one (ours), or one drawn from the decoder
        with a generator of ``(seed, step)`` (released: the same draw on every call and shard of a step)."""
        if self.released:
            return latent_of(model).sample_indices(step_generator("e2nas.weight", ctx.seed, ctx.global_step))
        return latent_of(model).decoded_indices()

    @staticmethod
    def released_weights(model: "Supernet", indices: Indices) -> dict[str, torch.Tensor]:
        """The released estimator's weights of a cell, with the rows a selection stage fixed (if any)."""
        weights = latent_of(model).released_weights(indices)
        return weights if model.projection is None else model.projection.apply(weights)

    # -- weight step: complementation ------------------------------------------------------------------
    def path_weights(self, model: "Supernet", ctx: StepContext) -> Optional[dict[str, torch.Tensor]]:
        """The step's one-hot weights without their gradient path (one op per edge runs), unless the
        caller needs the architecture gradient of the weight loss (second order: ours then runs the
        supernet's own weights, released its straight-through weights of the step's cell)."""
        if self.released:
            weights = self.released_weights(model, self.step_indices(model, ctx))
            return weights if ctx.arch_grad else {cell: w.detach() for cell, w in weights.items()}
        if ctx.arch_grad:
            return None
        return {cell: w.detach() for cell, w in model.arch_weights().items()}

    def weight_term(self, model: "Supernet", batch: Batch, logits: Callable[[], torch.Tensor],
                    ctx: StepContext) -> Optional[torch.Tensor]:
        """``lam / 2 * (L(a_{t-1}) + L(a_c))`` (None with ``complement`` 0, or when only the architecture
        gradient is asked for: these losses do not depend on ``z``)."""
        if self.complement == 0.0 or ctx.arch_grad:
            return None
        x, y = batch
        current = self.step_indices(model, ctx)
        previous = self.previous if self.previous is not None else current
        comp = complementary_indices(self.space, current, previous, step_generator("e2nas", ctx.seed, ctx.global_step))
        extra = F.cross_entropy(model(x, self._weights(previous, x.device)), y) \
            + F.cross_entropy(model(x, self._weights(comp, x.device)), y)
        self._step_complement = float(extra.detach()) / 2
        return self.complement / 2 * extra

    def _weights(self, indices: Indices, device: torch.device) -> dict[str, torch.Tensor]:
        hot = one_hot(self.space, {cell: t.unsqueeze(0).to(device) for cell, t in indices.items()})
        return {cell: t[0] for cell, t in hot.items()}

    def after_weight_step(self, model: "Supernet", batch: Batch, ctx: StepContext) -> None:
        """Record the step's architecture: the previous one for complementation, the archive, the visits.

        Released: the archive gets the step *before*'s cell instead, so that it joins after that step's
        architecture update (which follows this hook) and the architecture step sees only earlier cells."""
        current = self.step_indices(model, ctx)
        if self.previous is not None and any(not torch.equal(current[c], self.previous[c]) for c in current):
            self._metrics["changes"] += 1
        if self.released:
            if self.previous is not None:
                self._archive(model, self.previous)
        else:
            self._archive(model, current)
        self.visited.add(self._key(current))
        self.previous = current
        if not math.isnan(self._step_complement):
            self._metrics["complement"] += self._step_complement
            self._metrics["complement_steps"] += 1
            self._step_complement = math.nan

    def _key(self, indices: Indices) -> int:
        return architecture_hash(to_choices(self.space, {cell: t.unsqueeze(0) for cell, t in indices.items()})[0])

    def _archive(self, model: "Supernet", indices: Indices) -> None:
        """Append a cell's latent embedding to the archive (ours: moving an archived cell to the end
        instead), dropping the oldest beyond ``archive``."""
        key = self._key(indices)
        known = next((point for k, point in self.archive if k == key), None)
        if not self.released and known is not None:
            self.archive = [(k, point) for k, point in self.archive if k != key]
        if known is None:
            choices = to_choices(self.space, {cell: t.unsqueeze(0) for cell, t in indices.items()})[0]
            embedding = latent_of(model).autoencoder.embed([choices])
            known = torch.cat([embedding[cell][0] for cell in latent_of(model).cells]).cpu()
        self.archive.append((key, known))
        del self.archive[:-self.archive_size]

    # -- architecture step: exploration ----------------------------------------------------------------
    def density(self, model: "Supernet") -> torch.Tensor:
        """The archive's kernel density at the current latent (differentiable; 0 while the archive holds
        fewer than ``novelty_after`` cells)."""
        z = torch.cat(list[torch.Tensor](latent_of(model).parameters_in_order()))
        if not self.novelty_counts():
            return z.sum() * 0.0
        points = torch.stack([point for _, point in self.archive]).to(z.device, z.dtype)
        squared = ((points - z) ** 2).sum(-1) / z.numel()
        return torch.exp(-squared / (2 * self.bandwidth ** 2)).mean()

    def novelty_counts(self) -> bool:
        """Whether the archive holds the ``novelty_after`` cells the exploration term waits for."""
        return len(self.archive) >= self.novelty_after

    def arch_loss(self, model: "Supernet", batch: Batch, ctx: StepContext) -> Optional[torch.Tensor]:
        """``(1 - eta) * L_val + eta * weight * density`` (``detached``: ``1 - density`` as a constant
        novelty); the exploration part is 0 below ``novelty_after`` archived cells. Released: ``L_val`` of a
        cell drawn from the decoder (``(seed, step)``, not the weight step's draw), single-path, with the
        gradient of ``softmax(z)``."""
        x, y = batch
        if self.released:
            drawn = latent_of(model).sample_indices(step_generator("e2nas.arch", ctx.seed, ctx.global_step))
            loss = F.cross_entropy(model(x, self.released_weights(model, drawn)), y)
        else:
            loss = F.cross_entropy(model(x), y)
        if self.exploration == "none":
            return loss
        eta = exploration_eta(ctx.epoch, ctx.epochs)
        density = self.density(model)
        self._metrics["density"] += float(density.detach())
        self._metrics["density_steps"] += 1
        if self.exploration == "detached":
            novelty = 1.0 - density.detach() if self.novelty_counts() else density.detach()
            return (1 - eta) * loss + eta * novelty
        return (1 - eta) * loss + eta * self.exploration_weight * density

    # -- reports and state -----------------------------------------------------------------------------
    def on_epoch_end(self, model: "Supernet", ctx: StepContext) -> dict[str, float]:
        """``e2nas_eta``, ``e2nas_density`` (mean over the epoch's architecture steps), ``e2nas_changes``
        (weight steps whose architecture differed from the step before), ``e2nas_distinct`` (distinct
        architectures trained since the start) and ``e2nas_complement_loss`` (mean of the two extra losses)."""
        m = self._metrics
        report = {
            "e2nas_eta": exploration_eta(ctx.epoch, ctx.epochs),
            "e2nas_density": m["density"] / m["density_steps"] if m["density_steps"] else math.nan,
            "e2nas_changes": float(m["changes"]),
            "e2nas_distinct": float(len(self.visited)),
            "e2nas_complement_loss": m["complement"] / m["complement_steps"] if m["complement_steps"] else math.nan,
        }
        self._reset_metrics()
        return report

    def get_state(self) -> dict[str, Any]:
        """The previous architecture, the archive (hashes and embeddings, oldest first) and every visit."""
        return {
            "previous": None if self.previous is None else dict(self.previous),
            "archive_keys": torch.tensor([k for k, _ in self.archive], dtype=torch.int64),
            "archive_points": torch.stack([p for _, p in self.archive]) if self.archive else torch.zeros(0),
            "visited": torch.tensor(sorted(self.visited), dtype=torch.int64),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""
        self.previous = None if state["previous"] is None else {c: t.clone() for c, t in state["previous"].items()}
        keys = state["archive_keys"].tolist()
        self.archive = [(k, state["archive_points"][i].clone()) for i, k in enumerate(keys)]
        self.visited = set(state["visited"].tolist())
        self._reset_metrics()
