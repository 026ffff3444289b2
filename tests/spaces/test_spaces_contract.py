"""Every registered search space honours the SearchSpace contract; the registry stays torch-free.

The per-space tests also run on a toy space (tests/spaces/toy_space.py, a cell topology and genotype text of
its own), registered only while a test of it runs: a new space is checked here without editing this file.
"""

from __future__ import annotations

import random
import subprocess
import sys

import dataclasses

import pytest
from toy_space import TOY

from raynas.config.schema import SupernetConfig, TrainConfig
from raynas.errors import GenotypeError, SpaceError
from raynas.spaces import SPACES, SearchSpace, get_space, guess_space, is_genotype, parse_genotype
from raynas.spaces.base import PROTOCOL_KEYS

SPACE_NAMES = SPACES.names()
#: the per-space tests' spaces: every registered one and the toy
CONTRACT_NAMES = [*SPACE_NAMES, TOY.name]


@pytest.fixture(autouse=True)
def _toy_registered(request: pytest.FixtureRequest):
    """Register the toy space while a test parametrised with it runs (and only then)."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is None or callspec.params.get("name") != TOY.name:
        yield
        return
    with SPACES.temporarily(TOY.name, TOY):
        yield


def test_registered_spaces() -> None:
    assert {"darts", "nb201"} <= set(SPACE_NAMES)
    assert get_space("darts") is get_space("darts")
    with pytest.raises(SpaceError, match=r"unknown search space 'nb210'; valid: .*nb201.*Did you mean 'nb201'"):
        get_space("nb210")


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_structure(name: str) -> None:
    space = get_space(name)
    assert isinstance(space, SearchSpace) and space.name == name
    for cell in space.cell_types:
        edges = space.edges(cell)
        n_edges, n_ops = space.arch_shape(cell)
        assert n_edges == len(edges) and n_ops >= 2
        assert all(src < dst for src, dst in edges)
        assert edges == sorted(edges, key=lambda e: (e[1], e[0]))  # node-major, then by source
        assert all(len(space.edge_ops(cell, e)) == n_ops for e in range(n_edges))
    with pytest.raises(SpaceError, match="has no cell 'nope'"):
        space.edges("nope")
    with pytest.raises(SpaceError, match="has no edge 99"):
        space.edge_ops(space.cell_types[0], 99)
    args = space.default_network_args()
    assert set(args) == {"channels", "layers"} and all(v > 0 for v in args.values())


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_sample_validate_choices_text_round_trip(name: str) -> None:
    space = get_space(name)
    rng = random.Random(0)
    seen = set()
    for _ in range(25):
        genotype = space.sample(rng)
        seen.add(genotype)
        assert space.validate_genotype(genotype) is genotype
        choices = space.choices_from_genotype(genotype)
        assert set(choices) == set(space.cell_types)
        for cell, chosen in choices.items():
            for edge, op in chosen.items():
                assert op in space.edge_ops(cell, edge)
        assert space.genotype_from_choices(choices) == genotype
        text = str(genotype)
        assert space.parse_genotype(text) == genotype
        assert parse_genotype(text) == genotype
        assert space.is_connected(genotype) in (True, False)
    assert len(seen) > 20  # sampling actually varies
    assert space.sample(random.Random(7)) == space.sample(random.Random(7))


def test_darts_choices_keep_two_edges_per_node_and_order_pairs() -> None:
    space = get_space("darts")
    genotype = space.parse_genotype(
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
        "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], "
        "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
        "('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
        "('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])")
    choices = space.choices_from_genotype(genotype)
    assert choices["normal"] == {0: "sep_conv_3x3", 1: "sep_conv_3x3", 2: "skip_connect", 3: "sep_conv_3x3",
                                 5: "skip_connect", 6: "sep_conv_3x3", 9: "sep_conv_3x3", 11: "skip_connect"}
    rebuilt = space.genotype_from_choices(choices)
    assert rebuilt.normal[:2] == (("sep_conv_3x3", 0), ("sep_conv_3x3", 1))  # ascending by source
    assert rebuilt.reduce[2:4] == (("max_pool_3x3", 0), ("skip_connect", 2))
    assert space.choices_from_genotype(rebuilt) == choices
    with pytest.raises(GenotypeError, match=r"choices\['normal'\] keep 3 edges into node 3; expected 2"):
        space.genotype_from_choices({"normal": {**choices["normal"], 4: "skip_connect"},
                                     "reduce": choices["reduce"]})
    with_none = space.genotype_from_choices({"normal": {**choices["normal"], 0: "none"}, "reduce": choices["reduce"]})
    assert space.is_connected(with_none) is False and space.is_connected(rebuilt) is True
    with pytest.raises(GenotypeError, match="'none' is not allowed"):
        space.validate_genotype(with_none)


def test_nb201_connectivity_and_enumeration() -> None:
    space = get_space("nb201")
    connected = ["|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
                 "|skip_connect~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|nor_conv_1x1~2|"]
    disconnected = ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|",
                    "|none~0|+|none~0|nor_conv_3x3~1|+|none~0|nor_conv_3x3~1|nor_conv_3x3~2|"]
    assert all(space.is_connected(space.parse_genotype(t)) for t in connected)
    assert not any(space.is_connected(space.parse_genotype(t)) for t in disconnected)

    all_genotypes = list(space.enumerate_genotypes())
    assert space.num_architectures() == len(all_genotypes) == len(set(all_genotypes)) == 15625
    paths = [((0, 3),), ((0, 1), (1, 3)), ((0, 2), (2, 3)), ((0, 1), (1, 2), (2, 3))]
    n_connected = 0
    for genotype in all_genotypes:
        ops = {(src, dst): op for op, src, dst in genotype.edges()}
        by_paths = any(all(ops[e] != "none" for e in path) for path in paths)
        assert space.is_connected(genotype) is by_paths
        n_connected += by_paths
    assert 0 < n_connected < 15625


def test_nb201_choices_need_all_edges() -> None:
    space = get_space("nb201")
    choices = space.choices_from_genotype(space.sample(random.Random(1)))
    assert sorted(choices["cell"]) == list(range(6))
    del choices["cell"][3]
    with pytest.raises(GenotypeError, match=r"lack edge\(s\) \[3\]; an NB201 cell keeps all 6"):
        space.genotype_from_choices(choices)


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_build_network_of_a_sample_runs(name: str) -> None:
    torch = pytest.importorskip("torch")
    space = get_space(name)
    net = space.build_network(str(space.sample(random.Random(3))), channels=4, layers=3, num_classes=5,
                              in_channels=1)
    net.eval()
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 5)


def test_unknown_network_options_are_rejected() -> None:
    nb201 = get_space("nb201")
    genotype = nb201.sample(random.Random(0))
    with pytest.raises(SpaceError, match="auxiliary=True is not supported by space 'nb201'"):
        nb201.build_network(genotype, channels=4, layers=1, num_classes=2, in_channels=1, auxiliary=True)
    with pytest.raises(SpaceError, match="unknown network option\\(s\\) imagenet for space 'nb201'"):
        nb201.build_network(genotype, channels=4, layers=1, num_classes=2, in_channels=1, imagenet=True)
    with pytest.raises(SpaceError, match="unknown supernet option\\(s\\) stem_multiplier for space 'nb201'"):
        nb201.build_supernet(channels=4, layers=1, num_classes=2, in_channels=1, stem_multiplier=3)


def test_registry_and_genotypes_do_not_import_torch() -> None:
    code = ("import sys\n"
            "import raynas.spaces as s\n"
            "assert len(s.get_space('darts').edges('normal')) == 14\n"
            "assert len(s.get_space('nb201').edges('cell')) == 6\n"
            "s.get_space('nb201').parse_genotype('|none~0|+|none~0|none~1|+|none~0|none~1|none~2|')\n"
            "s.parse_genotype(str(s.get_space('darts').sample(__import__('random').Random(0))))\n"
            "print('torch' in sys.modules, 'ray' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False False"


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_what_the_rest_of_raynas_asks_a_space(name: str) -> None:
    """Training protocol, supernet options, E2NAS' inputs per node, the genotype class and text form."""
    space = get_space(name)
    protocol = space.training_protocol()
    assert set(protocol) == set(PROTOCOL_KEYS) and protocol["epochs"] >= 1 and protocol["batch_size"] >= 1
    assert protocol is not space.training_protocol()  # a copy: a caller cannot change the space's protocol
    assert 0 <= space.cutout(32) <= 32
    from raynas.train import resolve_protocol

    filled = resolve_protocol(TrainConfig(space=name, genotype=str(space.sample(random.Random(0)))))
    assert all(getattr(filled, key) == value for key, value in protocol.items())
    assert set(space.supernet_options) <= {field.name for field in dataclasses.fields(SupernetConfig)}
    assert space.inputs_per_node is None or (isinstance(space.inputs_per_node, int) and space.inputs_per_node >= 1)
    assert isinstance(space.genotype_type, type) and space.genotype_format
    others = [get_space(other) for other in SPACES.in_order()]
    for genotype in (space.sample(random.Random(seed)) for seed in range(5)):
        text = str(genotype)
        assert isinstance(genotype, space.genotype_type) and type(genotype).CELLS == space.cell_types
        assert genotype.count(space.edge_ops(space.cell_types[0], 0)[-1], space.cell_types[0]) >= 0
        assert space.is_genotype_text(text) and space.read_genotype(text) == genotype
        # the text is no other kind of space's: only spaces of the same genotype class claim it
        assert {other.genotype_type for other in others if other.is_genotype_text(text)} == {space.genotype_type}
        guessed = get_space(guess_space(text))
        assert guessed.genotype_type is space.genotype_type and guessed.read_genotype(text) == genotype
        assert get_space(guess_space(genotype)).genotype_type is space.genotype_type
        assert is_genotype(genotype) and not is_genotype(text)


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_cell_graph_shows_the_kept_edges(name: str) -> None:
    space = get_space(name)
    for seed in range(5):
        genotype = space.sample(random.Random(seed))
        choices = space.choices_from_genotype(genotype)
        for cell in space.cell_types:
            graph = space.cell_graph(genotype, cell)
            kinds = list(graph.nodes.values())
            assert set(kinds) <= {"input", "inner", "output"} and kinds.count("output") == 1 and "input" in kinds
            assert set(graph.names) == set(graph.nodes) and all(graph.names.values())
            # the names the alphas plots give the same nodes
            assert all(graph.names[node] == space.node_name(cell, node)
                       for node, kind in graph.nodes.items() if kind != "output")
            assert all(src in graph.nodes and dst in graph.nodes for src, dst, _ in graph.edges)
            edges = space.edges(cell)
            assert sorted(graph.op_edges()) == sorted((*edges[e], op) for e, op in choices[cell].items())
    with pytest.raises(SpaceError, match="has no cell 'nope'"):
        space.cell_graph(genotype, "nope")


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_supernet_with_its_options_and_e2nas_layouts(name: str) -> None:
    torch = pytest.importorskip("torch")
    from raynas.e2nas.encoding import layouts

    space = get_space(name)
    defaults = SupernetConfig()
    options = {option: getattr(defaults, option) for option in space.supernet_options}
    net = space.build_supernet(channels=2, layers=3, num_classes=3, in_channels=1, **options)
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    for cell, layout in layouts(space).items():
        assert layout.num_edges == len(space.edges(cell)) and layout.inputs_per_node == space.inputs_per_node


def test_the_toy_is_registered_only_while_its_tests_run() -> None:
    assert TOY.name not in SPACES and TOY.name not in SPACES.in_order()
    with SPACES.temporarily(TOY.name, TOY):
        assert get_space(TOY.name) is TOY and SPACES.in_order()[-1] == TOY.name
        assert guess_space(str(TOY.sample(random.Random(0)))) == TOY.name
    assert SPACES.names() == SPACE_NAMES and TOY.name not in SPACES.in_order()
    with pytest.raises(SpaceError, match="unknown search space 'toy'"):
        get_space(TOY.name)
    with pytest.raises(SpaceError, match="unknown search space 'toy'"):
        SPACES.unregister(TOY.name)
