"""Finite upper limits on sizes and counts, and the checks of command-line options against them.

A size nobody means (``supernet.channels: 100000000``, ``--seeds 0-1000000000000``) would otherwise run
out of memory, run for ever or fail deep inside torch with a traceback. The limits are generous: far
above the published protocols (DARTS: C=36, 20 cells, 600 epochs; NB201: C=16, 200 epochs) and any
realistic run, so they only stop typos and hostile input. The config schema uses them as ``le`` rules
(docs/config.md, the config reference, lists each); the CLI's options use :func:`check_int` and
:func:`parse_seeds`. Every message names the option, the value and the allowed range. Imports nothing heavy.
"""

from __future__ import annotations

from typing import Optional

from raynas.errors import ConfigError

#: channels of a network (initial C, auxiliary models, input channels)
MAX_CHANNELS = 4096
#: cells (DARTS) or cells per stage (NB201) of a network
MAX_LAYERS = 1000
#: classes of a data set (ImageNet-21k has 21,841)
MAX_CLASSES = 100_000
#: epochs of a search, a training or a pretraining (and every count of epochs: warm-up, intervals, rungs)
MAX_EPOCHS = 100_000
#: samples in one batch
MAX_BATCH_SIZE = 65_536
#: steps of one epoch, or batches of one evaluation
MAX_STEPS = 10_000_000
#: samples of a data set or architectures drawn (synthetic data, random-search samples, quadruples)
MAX_SAMPLES = 10_000_000
#: a seed: numpy's generators take seeds below 2**32
MAX_SEED = 2**32 - 1
#: seeds given at once (``--seeds``)
MAX_SEEDS = 1000
#: trials of one population (grid combinations x num_samples, architectures x seeds)
MAX_TRIALS = 10_000
#: values of one ``{choice: [...]}`` distribution of ``tune.params``
MAX_CHOICES = 1000
#: processes per trial or per population (Ray actors, shards, workers, retries, threads)
MAX_WORKERS = 1024
#: CPUs of a local Ray instance or of one trial's process
MAX_CPUS = 65_536
#: GPUs of one trial's process or actor
MAX_GPUS = 1024
#: side of an image in pixels
MAX_IMAGE_SIZE = 4096


def check_int(option: str, value: Optional[int], low: int, high: int) -> None:
    """Raise a one-line ConfigError unless ``value`` (an option's integer; None: unset) is in ``[low, high]``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{option} = {value!r}: must be an integer")
    if not low <= value <= high:
        raise ConfigError(f"{option} = {value!r}: must be >= {low} and <= {high}")


def check_number(option: str, value: Optional[float], high: float, *, positive: bool = False) -> None:
    """Raise a one-line ConfigError unless ``0 <= value <= high`` (``0 < value`` with ``positive``)."""
    if value is None:
        return
    low_ok = value > 0 if positive else value >= 0
    if not (low_ok and value <= high):  # also refuses NaN
        raise ConfigError(f"{option} = {value!r}: must be {'> 0' if positive else '>= 0'} and <= {high:g}")


def parse_seeds(option: str, text: str) -> list[int]:
    """``0,1,2`` or ``0-2`` (or both: ``0-2,7``) as a list of seeds, each in ``[0, MAX_SEED]``, at most
    :data:`MAX_SEEDS` of them; the count is known before any list is built, so a huge range fails at once."""
    shown = text if len(text) <= 60 else text[:57] + "..."
    parts = [part.strip() for part in text.split(",") if part.strip()]
    ranges: list[tuple[int, int]] = []
    try:
        for part in parts:
            if "-" in part[1:]:
                low_text, high_text = part.split("-", 1)
                low, high = int(low_text), int(high_text)
            else:
                low = high = int(part)
            ranges.append((low, high))
    except ValueError:
        raise ConfigError(f"{option} = {shown!r}: give seeds as 0,1,2 or 0-2") from None
    for low, high in ranges:
        for seed in (low, high):
            if not 0 <= seed <= MAX_SEED:
                raise ConfigError(f"{option} = {shown!r}: seed {seed} is out of range; seeds must be >= 0 and "
                                  f"<= {MAX_SEED}")
        if high < low:
            raise ConfigError(f"{option} = {shown!r}: the range {low}-{high} is empty; write low-high")
    count = sum(high - low + 1 for low, high in ranges)
    if count > MAX_SEEDS:
        raise ConfigError(f"{option} = {shown!r}: {count} seeds; at most {MAX_SEEDS} are allowed at once")
    return [seed for low, high in ranges for seed in range(low, high + 1)]
