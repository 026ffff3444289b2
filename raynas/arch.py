"""Facts about one architecture: its normalised genotype, parameter counts and connectivity.

Backs ``raynas arch show``. Builds the derived network, so it imports torch when called.
"""

from __future__ import annotations

from typing import Any

from raynas.config.limits import MAX_CHANNELS, MAX_CLASSES, MAX_LAYERS, check_int
from raynas.errors import ConfigError

#: the largest network built (4 GB of float32 weights)
MAX_PARAMS = 1_000_000_000


def describe_architecture(space: str, genotype: str, *, channels: int | None = None, layers: int | None = None,
                          num_classes: int = 10, in_channels: int = 3, auxiliary: bool = False,
                          imagenet: bool = False) -> dict[str, Any]:
    """Describe ``genotype`` (published text) of search space ``space`` as its derived network.

    ``channels``/``layers`` default to the space's evaluation network. Returns a dict with ``space``,
    ``genotype`` (normalised text), ``params`` (without auxiliary head), ``params_total`` (with it),
    ``params_m`` (params in millions, 2 decimals), ``connected``, ``num_skip`` (``skip_connect`` ops in the
    first cell type: DARTS "normal", NB201 "cell"), ``channels``, ``layers``, ``num_classes``, ``auxiliary``.
    Unknown spaces and invalid genotypes raise :class:`SpaceError` / :class:`GenotypeError`; sizes out of
    range (:mod:`raynas.config.limits`) and networks of more than :data:`MAX_PARAMS` parameters (measured
    on torch's meta device, before any memory is taken) raise :class:`ConfigError`.
    """
    import torch

    from raynas.networks import count_parameters
    from raynas.spaces import get_space

    check_int("--channels", channels, 1, MAX_CHANNELS)
    check_int("--layers", layers, 1, MAX_LAYERS)
    check_int("--classes", num_classes, 1, MAX_CLASSES)
    check_int("--in-channels", in_channels, 1, MAX_CHANNELS)
    search_space = get_space(space)
    parsed = search_space.parse_genotype(genotype)
    defaults = search_space.default_network_args()
    channels = defaults["channels"] if channels is None else channels
    layers = defaults["layers"] if layers is None else layers
    options = {"imagenet": True} if imagenet else {}

    def build() -> Any:
        return search_space.build_network(parsed, channels=channels, layers=layers, num_classes=num_classes,
                                          in_channels=in_channels, auxiliary=auxiliary, **options)

    with torch.device("meta"):  # the size first, without memory: a network too large to hold is refused
        size = count_parameters(build(), exclude_auxiliary=False)
    if size > MAX_PARAMS:
        raise ConfigError(f"--channels {channels} --layers {layers} --classes {num_classes}: the network would have "
                          f"{size:,} parameters; at most {MAX_PARAMS:,} are built")
    network = build()
    params = count_parameters(network, exclude_auxiliary=True)
    return {
        "space": space,
        "genotype": str(parsed),
        "params": params,
        "params_total": count_parameters(network, exclude_auxiliary=False),
        "params_m": round(params / 1e6, 2),
        "connected": bool(search_space.is_connected(parsed)),
        "num_skip": parsed.count("skip_connect", search_space.cell_types[0]),
        "channels": channels,
        "layers": layers,
        "num_classes": num_classes,
        "auxiliary": auxiliary,
    }
