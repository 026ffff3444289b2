"""``raynas.search`` and ``raynas.train``: the commands ``raynas search`` and ``raynas train`` as functions.

Each goes through the command's own code path (:func:`raynas.experiment.prepare_experiment` and
:func:`~raynas.experiment.run_experiment`; :func:`raynas.evaluation.plan_evaluation` and
:func:`~raynas.evaluation.run_evaluation`): the same checks before anything is written, the same one-line
errors (raised as :class:`raynas.errors.RaynasError`, not printed), the same progress lines and summary on
stdout, the same folders. What differs: a config may be a mapping, overrides a mapping of dotted keys to
values, and the result is a handle to read (:mod:`raynas.api.handles`). While one runs, 022 is added to the
umask as the CLI does (:func:`raynas.folder_trust.restricted_umask`).

Ray: the first run starts it (or joins ``ray.address``) and leaves it running for the next; a later run
whose set ``ray.*`` settings differ restarts the Ray raynas started, and a Ray you started yourself with
``ray.init`` is used as it is (:mod:`raynas.ray_session`). This module imports neither torch nor Ray.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional, Sequence, Union

from raynas.api.handles import Evaluation, Experiment, Trial
from raynas.errors import ConfigError

Overrides = Union[Sequence[str], Mapping[str, Any]]
"""``--set`` items (``["search.epochs=5"]``) or a mapping of dotted keys to values (``{"search.epochs": 5}``)."""

DEFAULT_OUT = "raynas_results"


def search(config: Union[str, os.PathLike, Mapping[str, Any]], overrides: Overrides = (), *,
           out: Union[str, os.PathLike] = DEFAULT_OUT, address: Optional[str] = None) -> Experiment:
    """Run the population of searches ``config`` describes (a YAML file's path, a shipped config's name such
    as ``"quickstart"``, or the mapping a config file holds) with ``overrides`` applied, into ``<out>/<name>``,
    as ``raynas search`` does; return the finished :class:`Experiment`.

    Bad input raises a :class:`raynas.errors.ConfigError` with the CLI's one-line message before anything
    is written. Failed trials do not raise: ``experiment.failures`` names them (and ``outcome.num_errors``
    counts them). A first Ctrl+C stops the population and returns (``outcome.unfinished`` trials left;
    ``raynas resume <folder>`` continues it); a second one raises KeyboardInterrupt after saying how to resume.
    ``address`` joins a Ray cluster, as ``--address``.
    """
    from raynas.experiment import interrupted_lines, prepare_experiment, run_experiment, summary_lines
    from raynas.config.overrides import override_items
    from raynas.folder_trust import restricted_umask

    if not isinstance(config, (str, os.PathLike, Mapping)):
        raise ConfigError(f"config: give a YAML file's path, a shipped config's name or a mapping of config keys, "
                          f"not a {type(config).__name__}")
    if not isinstance(config, Mapping):
        from raynas.config.shipped import resolve_config

        config = resolve_config(config)  # a shipped config's name (quickstart), as raynas search takes it
    with restricted_umask():
        prepared = prepare_experiment(config, override_items(overrides), out=out, address=address)
        try:
            outcome = run_experiment(prepared, echo=print)
        except KeyboardInterrupt:
            for line in interrupted_lines(prepared.directory):
                print(line)
            raise
    for line in summary_lines(outcome):
        print(line)
    return Experiment(prepared.directory, outcome)


Source = Union[str, os.PathLike, Experiment, Trial, Any]
"""What :func:`train` trains: a genotype (text, or a parsed genotype), a genotype file, a search folder, an
:class:`Experiment` (its best genotypes, as a search folder) or a :class:`Trial` (its final genotype)."""


def _source_text(source: Source) -> str:
    """A :func:`train` source as ``raynas train`` takes it on its command line."""
    if isinstance(source, Experiment):
        return str(source.directory)
    if isinstance(source, Trial):
        if source.genotype is None:
            raise ConfigError(f"sources: trial {source.trial_id} derived no genotype (status {source.status})")
        return str(source.genotype)
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    from raynas.spaces import is_genotype

    if is_genotype(source):
        return str(source)
    raise ConfigError(f"sources: a {type(source).__name__} is not a genotype, a genotype file, a search folder, "
                      "an Experiment or a Trial")


def _seed_list(seeds: Union[int, str, Sequence[int]]) -> list[int]:
    """``seeds`` as a list: one seed, ``"0-2"``/``"0,1,2"`` (as ``--seeds``) or a sequence of seeds."""
    if isinstance(seeds, str):
        from raynas.config.limits import parse_seeds

        return parse_seeds("seeds", seeds)
    if isinstance(seeds, int):
        return [seeds]
    return list(seeds)


def train(sources: Union[Source, Sequence[Source]], *, seeds: Union[int, str, Sequence[int]] = 0,
          epochs: Optional[int] = None, config: Union[str, os.PathLike, None] = None, overrides: Overrides = (),
          space: Optional[str] = None, dataset: Optional[str] = None, trials: Sequence[str] = (), top: int = 1,
          name: Optional[str] = None, out: Union[str, os.PathLike, None] = None, cpus_per_trial: float = 1.0,
          gpus_per_trial: float = 0.0, max_failures: int = 0, num_cpus: Optional[int] = None,
          address: Optional[str] = None) -> Evaluation:
    """Train architectures from scratch, every source's genotypes with every seed, one Ray Tune trial each,
    as ``raynas train`` does (its options as keywords); return the finished :class:`Evaluation`.

    A source is a genotype (text or parsed), a genotype file, a search folder or an :class:`Experiment` (its
    best genotype; ``top`` and ``trials`` pick others) or a :class:`Trial`. ``config`` is a training YAML,
    ``overrides`` its ``--set`` items or a mapping (``{"channels": 16}``). A genotype's space is guessed
    from its text unless ``space``; an Experiment source trains in its own space. The run folder is
    ``<out>/<name>``: ``<search folder>/evaluations/train-<date>-<time>`` for one search source. Bad input
    raises :class:`raynas.errors.RaynasError` (one line) before anything is written; failed trials do not
    raise (``outcome.num_errors``).
    """
    from raynas.config.overrides import override_items
    from raynas.evaluation import evaluation_summary, plan_evaluation, run_evaluation
    from raynas.folder_trust import restricted_umask

    listed: Sequence[Source] = (sources if isinstance(sources, Sequence) and not isinstance(sources, str)
                                else [sources])
    texts = [_source_text(source) for source in listed]
    with restricted_umask():
        prepared = plan_evaluation(texts, space=space, dataset=dataset,
                                   config_path=os.fspath(config) if config is not None else None,
                                   overrides=override_items(overrides), epochs=epochs, seeds=_seed_list(seeds),
                                   trials=trials, top=top, name=name, out=out, cpus_per_trial=cpus_per_trial,
                                   gpus_per_trial=gpus_per_trial, max_failures=max_failures, address=address,
                                   num_cpus=num_cpus)
        outcome = run_evaluation(prepared, echo=print)
    for line in evaluation_summary(outcome):
        print(line)
    return Evaluation(prepared.directory, outcome)
