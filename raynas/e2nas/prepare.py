"""The autoencoder of an E2NAS experiment, settled on the driver before any trial starts.

A config that names ``e2nas.autoencoder`` has the file checked against the search space and, for
``e2nas.estimator: released``, its latent size (a one-line :class:`~raynas.errors.ConfigError` otherwise);
one that does not gets an autoencoder pretrained now (``e2nas.pretrain_epochs``, seed 0, the defaults of
``raynas e2nas pretrain``, whose 30-d NB201 latent fits the released estimator) into the experiment folder,
and the path goes into the resolved config, so every trial, shard and ``raynas resume`` reads the same file.
A population where only some trials search with E2NAS (a grid of ``method`` or of ``variant``) settles one
autoencoder the same way and puts it into the base config's ``e2nas`` section, which those trials inherit
(:func:`prepare_for_trials`).

With ``e2nas.pretrain_per_search`` a search reads an autoencoder pretrained with its own ``search.seed``
instead: the driver pretrains one per seed of those searches, ``e2nas_autoencoder_seed<N>.pt`` beside the
shared file, and each trial reads its seed's (:func:`search_autoencoder`). With one shared autoencoder every
seed of a search starts from the same latent geometry, so the spread over seeds leaves out the autoencoder's
own: per search, a population measures a method and its pretraining together.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from raynas.config.schema import ExperimentConfig
from raynas.errors import ConfigError

#: the autoencoder file ``raynas search`` writes into an E2NAS experiment folder
AUTOENCODER_FILE = "e2nas_autoencoder.pt"


def seed_file(seed: int) -> str:
    """The name of the autoencoder file pretrained with ``seed`` for the searches of that seed."""
    return f"e2nas_autoencoder_seed{seed}.pt"


def search_autoencoder(cfg: ExperimentConfig) -> ExperimentConfig:
    """``cfg`` naming the autoencoder its search reads: with ``e2nas.pretrain_per_search``, the file of its
    ``search.seed`` beside the shared file of the resolved config (unchanged otherwise)."""
    if cfg.method != "e2nas" or not cfg.e2nas.pretrain_per_search or not cfg.e2nas.autoencoder:
        return cfg
    own = Path(cfg.e2nas.autoencoder).with_name(seed_file(cfg.search.seed))
    return replace(cfg, e2nas=replace(cfg.e2nas, autoencoder=str(own)))


def prepare_autoencoder(cfg: ExperimentConfig, directory: Path, *, echo: Callable[[str], None] = print,
                        seed: int = 0, name: str = AUTOENCODER_FILE) -> ExperimentConfig:
    """``cfg`` with ``e2nas.autoencoder`` set to a checked file (unchanged unless ``method`` is e2nas): the
    file it names, checked, or one pretrained now with ``seed`` into ``directory / name``."""
    if cfg.method != "e2nas":
        return cfg
    from raynas.e2nas.vgae import load, pretrain, save

    if cfg.e2nas.autoencoder:
        model = load(cfg.e2nas.autoencoder)
        if model.space.name != cfg.space:
            raise ConfigError(f"e2nas.autoencoder = {cfg.e2nas.autoencoder!r}: trained for space "
                              f"{model.space.name!r}, the search runs {cfg.space!r}; pretrain one with "
                              f"`raynas e2nas pretrain {cfg.space}`")
        if cfg.e2nas.estimator == "released":
            from raynas.e2nas.latent import released_fit_problem

            problem = released_fit_problem(model)
            if problem is not None:
                raise ConfigError(f"e2nas.autoencoder = {cfg.e2nas.autoencoder!r}: with e2nas.estimator = "
                                  f"'released', {problem}")
        return cfg
    epochs = cfg.e2nas.pretrain_epochs
    echo(f"raynas: pretraining the {cfg.space} cell autoencoder for E2NAS ({epochs} epochs, seed {seed})")

    def progress(row: dict[str, float]) -> None:
        echo(f"  autoencoder epoch {int(row['epoch'])}/{epochs}: loss {row['loss']:.4f} {row['seconds']:.1f}s")

    model, metrics = pretrain(cfg.space, epochs=epochs, holdout=0.1, seed=seed, progress=progress)
    target = directory / name
    save(model, target)
    echo(f"  held-out cells reconstructed: {metrics['holdout_recon_acc']:.4f}; saved {target}")
    return replace(cfg, e2nas=replace(cfg.e2nas, autoencoder=str(target.resolve())))


def same_pretraining(cfg: ExperimentConfig, trial: ExperimentConfig) -> bool:
    """Whether ``trial``'s own autoencoder (``e2nas.pretrain_per_search``) is the one pretrained for the
    base config ``cfg`` when that names none: seed 0, the same space and pretraining epochs."""
    return (not cfg.e2nas.autoencoder and trial.search.seed == 0 and trial.space == cfg.space
            and trial.e2nas.pretrain_epochs == cfg.e2nas.pretrain_epochs)


def prepare_for_trials(cfg: ExperimentConfig, trials: Sequence[ExperimentConfig], directory: Path, *,
                       echo: Callable[[str], None] = print) -> ExperimentConfig:
    """The base config ``cfg`` of a population with the autoencoder its E2NAS trials (``trials``: every
    trial's config) read: pretrained once, or the file ``cfg`` names, checked for each E2NAS trial (its space,
    the released estimator's latent size) as :func:`prepare_autoencoder` checks one search."""
    searches = [trial for trial in trials if trial.method == "e2nas"]
    if not searches:
        return cfg
    for trial in searches:
        if trial.e2nas.pretrain_per_search and trial.e2nas.autoencoder:
            raise ConfigError(f"e2nas.autoencoder = {trial.e2nas.autoencoder!r}: must be unset with "
                              "e2nas.pretrain_per_search = true, which pretrains each search seed's own")
    # the shared file also anchors the per-seed files (search_autoencoder names them beside it)
    shared = prepare_autoencoder(replace(cfg, method="e2nas"), directory, echo=echo).e2nas.autoencoder
    checked = set()
    for trial in searches:
        if not trial.e2nas.autoencoder:  # the trial inherits the base config's file
            trial = search_autoencoder(replace(trial, e2nas=replace(trial.e2nas, autoencoder=shared)))
        what = (trial.space, trial.e2nas.estimator, trial.e2nas.autoencoder)
        if what in checked:
            continue
        own = trial.e2nas.autoencoder
        # both named by now: prepare_autoencoder sets the shared file, and the trial names it or its own
        assert shared is not None and own is not None
        if trial.e2nas.pretrain_per_search and not Path(own).exists():
            if same_pretraining(cfg, trial):  # seed 0's would be the shared file again, bit for bit
                shutil.copyfile(shared, own)
            else:
                prepare_autoencoder(replace(trial, e2nas=replace(trial.e2nas, autoencoder=None)), directory,
                                    echo=echo, seed=trial.search.seed, name=seed_file(trial.search.seed))
        prepare_autoencoder(trial, directory, echo=echo)  # a named file is only checked, never trained
        checked.add(what)
    return replace(cfg, e2nas=replace(cfg.e2nas, autoencoder=shared))
