"""Facts about one architecture: its normalised genotype, parameter counts and connectivity.

Backs ``raynas arch show``. Builds the derived network, so it imports torch when called.
"""

from __future__ import annotations

from typing import Any


def describe_architecture(space: str, genotype: str, *, channels: int | None = None, layers: int | None = None,
                          num_classes: int = 10, in_channels: int = 3, auxiliary: bool = False,
                          imagenet: bool = False) -> dict[str, Any]:
    """Describe ``genotype`` (published text) of search space ``space`` as its derived network.

    ``channels``/``layers`` default to the space's evaluation network. Returns a dict with ``space``,
    ``genotype`` (normalised text), ``params`` (without auxiliary head), ``params_total`` (with it),
    ``params_m`` (params in millions, 2 decimals), ``connected``, ``num_skip`` (``skip_connect`` ops in the
    first cell type: DARTS "normal", NB201 "cell"), ``channels``, ``layers``, ``num_classes``, ``auxiliary``.
    Unknown spaces and invalid genotypes raise :class:`SpaceError` / :class:`GenotypeError`.
    """
    from raynas.networks import count_parameters
    from raynas.spaces import get_space

    search_space = get_space(space)
    parsed = search_space.parse_genotype(genotype)
    defaults = search_space.default_network_args()
    channels = defaults["channels"] if channels is None else channels
    layers = defaults["layers"] if layers is None else layers
    options = {"imagenet": True} if imagenet else {}
    network = search_space.build_network(parsed, channels=channels, layers=layers, num_classes=num_classes,
                                         in_channels=in_channels, auxiliary=auxiliary, **options)
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
