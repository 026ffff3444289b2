"""Perturbation selection (DARTS-PT): the decision rules with scripted evaluations, the stage plan, and the
acceptance case on a trained supernet where magnitude and perturbation disagree."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from raynas.config import config_from_dict
from raynas.errors import ConfigError
from raynas.search import Search
from raynas.selection import SELECTIONS, PerturbationSelection, stage_epochs, total_epochs
from raynas.selection.perturbation import projection_rounds, topology_nodes
from raynas.spaces import get_space
from raynas.supernet.projection import Projection

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def supernet(space: str):
    torch.manual_seed(0)
    net = get_space(space).build_supernet(channels=4, layers=1, num_classes=3, in_channels=1)
    net.projection = Projection(net.space)
    return net


def masked_entries(weights: dict, base: dict) -> list[tuple[str, int, int]]:
    """(cell, edge, op) of every entry a candidate zeroed relative to ``base``."""
    out = []
    for cell, w in weights.items():
        for edge, op in zip(*torch.nonzero((w == 0) & (base[cell] != 0), as_tuple=True)):
            out.append((cell, int(edge), int(op)))
    return out


def scripted(acc_of, loss_of=lambda masked: 1.0):
    """An Evaluate whose (loss, acc) depends on which entries a candidate masked; records every call."""
    calls = []

    def evaluate(candidates):
        results = []
        for weights in candidates:
            masked = masked_entries(weights, evaluate.base())
            results.append((loss_of(masked), acc_of(masked)))
        calls.append(len(candidates))
        return results
    evaluate.calls = calls
    return evaluate


def attach_base(evaluate, net):
    evaluate.base = lambda: {c: w.detach() for c, w in net.arch_weights().items()}


def test_registered_and_torch_free_to_plan():
    assert SELECTIONS.get("perturbation") is PerturbationSelection
    code = ("import sys; from raynas.config import load_config; from raynas.selection import total_epochs; "
            "cfg = load_config('search_configs/smoke/perturbation.yaml'); print(total_epochs(cfg)); "
            "assert 'torch' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) > 0


@pytest.mark.parametrize("space, proj_intv, topology, expected", [
    ("nb201", 5, True, 5 * 5 + 1),          # 6 op rounds
    ("darts", 5, True, 5 * 16 + 1),         # 14 op + 3 topology rounds: DARTS-PT's 81 tune epochs
    ("darts-nonone", 5, False, 5 * 13 + 1),  # 14 op rounds only
    ("s2", 0, True, 17),                     # no fine-tuning: one round per stage epoch
])
def test_stage_length(space, proj_intv, topology, expected):
    cfg = config_from_dict({"space": space, "selection": {"name": "perturbation", "proj_intv": proj_intv,
                                                         "topology": topology}, "search": {"epochs": 7}})
    assert stage_epochs(cfg) == expected and total_epochs(cfg) == 7 + expected
    assert stage_epochs(config_from_dict({"space": space})) == 0  # magnitude has no stage


def test_rounds_and_topology_nodes():
    assert projection_rounds(get_space("nb201")) == ["op"] * 6
    assert projection_rounds(get_space("s3")) == ["op"] * 14 + ["topology"] * 3
    assert topology_nodes(get_space("darts"), "normal") == [3, 4, 5]
    assert topology_nodes(get_space("nb201"), "cell") == []


def test_op_round_keeps_the_op_whose_removal_hurts_most():
    net = supernet("nb201")
    # removing nor_conv_3x3 hurts most, removing none does not hurt at all
    penalty = {"none": 0.0, "skip_connect": 0.1, "nor_conv_1x1": 0.05, "nor_conv_3x3": 0.3, "avg_pool_3x3": 0.1}
    evaluate = scripted(lambda masked: 0.9 - sum(penalty[NB201_OPS[op]] for _, _, op in masked))
    attach_base(evaluate, net)
    selection = PerturbationSelection(proj_intv=0, edge_order="fixed")
    rows = selection.decide(net, 0, evaluate)
    assert net.projection.fixed == {"cell": {0: NB201_OPS.index("nor_conv_3x3")}}
    assert rows["edge"] == [0] * 5 and rows["op"] == list(NB201_OPS)  # none is a candidate in NB201
    assert rows["decision"] == [None, None, None, "keep", None]
    assert rows["acc"] == pytest.approx([0.9, 0.8, 0.85, 0.6, 0.8])
    # the decided row is one-hot in every later forward pass
    assert net.arch_weights()["cell"][0].tolist() == [0, 0, 0, 1, 0]


def test_loss_criterion_and_ties_go_to_the_lower_index():
    net = supernet("nb201")
    evaluate = scripted(lambda masked: 0.5, loss_of=lambda masked: 2.0 if masked[0][2] in (1, 3) else 1.0)
    attach_base(evaluate, net)
    PerturbationSelection(criterion="loss", proj_intv=0, edge_order="fixed").decide(net, 0, evaluate)
    assert net.projection.fixed["cell"] == {0: 1}  # skip_connect and nor_conv_3x3 tie at the highest loss
    net2 = supernet("nb201")
    flat = scripted(lambda masked: 0.5)
    attach_base(flat, net2)
    PerturbationSelection(proj_intv=0, edge_order="fixed").decide(net2, 0, flat)
    assert net2.projection.fixed["cell"] == {0: 0}  # all equal: the first op, as the released code does


def test_darts_cells_never_keep_none_and_decide_both_cells_per_round():
    net = supernet("darts")
    evaluate = scripted(lambda masked: 0.5)
    attach_base(evaluate, net)
    rows = PerturbationSelection(proj_intv=0, edge_order="fixed").decide(net, 0, evaluate)
    assert "none" not in rows["op"] and len(rows["op"]) == 2 * 7
    assert rows["cell"] == ["normal"] * 7 + ["reduce"] * 7
    assert net.projection.fixed == {"normal": {0: 1}, "reduce": {0: 1}}  # max_pool_3x3, the first real op


def test_topology_round_drops_the_edges_whose_removal_hurts_least():
    net = supernet("s2")
    for cell in ("normal", "reduce"):
        for edge in range(14):
            net.projection.keep_op(cell, edge, 1)
    # node 5 has inputs e9..e13; removing e10 or e12 hurts, the others do not
    hurt = {10: 0.3, 12: 0.2}
    evaluate = scripted(lambda masked: 0.9 - sum(hurt.get(edge, 0.0) for _, edge, _ in masked
                                                 if edge in hurt))
    attach_base(evaluate, net)
    selection = PerturbationSelection(proj_intv=0, edge_order="fixed")
    rows = selection.decide(net, 14, evaluate)  # round 14: the first topology round, node 3 first
    assert rows["kind"] == ["topology"] * len(rows["kind"]) and set(rows["node"]) == {3}
    # node 3 has edges 2, 3, 4: all tie, the first is dropped
    assert [e for e, d in zip(rows["edge"], rows["decision"]) if d == "drop"] == [2, 2]  # both cells
    for round_index in (15, 16):
        selection.decide(net, round_index, evaluate)
    dropped = {e for e, k in net.projection.fixed["normal"].items() if k == -1}
    assert {10, 12} & dropped == set() and {9, 11, 13} <= dropped
    genotype = selection.select(net, None, None)
    assert [src for _, src in genotype.normal[6:]] == [1, 3]  # node 5 keeps e10 (from 1) and e12 (from 3)
    assert evaluate.calls[-3:] == [5, 4, 3]  # node 5: 5 candidates, then 4, then 3


NODE5 = (9, 10, 11, 12, 13)  # the incoming edges of node 5 in a DARTS cell


def node5_evaluate(net, seen_dropped):
    """An Evaluate on the rows of node 5 a candidate leaves at zero: e9 and e11 are redundant (losing both
    costs 0.4), the others cost a little each. Records, per call, which node-5 edges the projection has
    dropped (in the normal cell) while the round runs."""
    cost = {9: 0.0, 10: 0.05, 11: 0.01, 12: 0.2, 13: 0.1}

    def evaluate(candidates):
        seen_dropped.append({e for e in NODE5 if net.projection.is_dropped("normal", e)})
        results = []
        for weights in candidates:
            acc = 0.9
            for w in weights.values():
                zero = {e for e in NODE5 if not bool(w[e].any())}
                acc -= sum(cost[e] for e in zero) + (0.4 if {9, 11} <= zero else 0.0)
            results.append((1.0, acc))
        return results
    return evaluate


@pytest.mark.parametrize("topology_drop, drops, accs, dropped_during", [
    # the released code: every step sees all of node 5's edges but the candidate, so losing e11 after e9
    # looks harmless and both go; the removals take effect when the round ends
    ("after_round", [9, 11, 10], [0.9, 0.85, 0.89, 0.7, 0.8, 0.85, 0.89, 0.7, 0.8, 0.85, 0.7, 0.8],
     [set(), set(), set()]),
    # immediate: e9 is gone at step 1, so removing e11 too costs 0.4 and e11 stays
    ("immediate", [9, 10, 13], [0.9, 0.85, 0.89, 0.7, 0.8, 0.85, 0.49, 0.7, 0.8, 0.44, 0.65, 0.75],
     [set(), {9}, {9, 10}]),
])
def test_topology_drop_when_the_removed_edges_leave_the_supernet(topology_drop, drops, accs, dropped_during):
    net = supernet("s2")
    for cell in ("normal", "reduce"):
        for edge in range(14):
            net.projection.keep_op(cell, edge, 1)
    seen_dropped = []
    selection = PerturbationSelection(proj_intv=0, edge_order="fixed", topology_drop=topology_drop)
    for round_index in (14, 15):  # nodes 3 and 4 (no cost: the lower edges go)
        selection.decide(net, round_index, node5_evaluate(net, []))
    rows = selection.decide(net, 16, node5_evaluate(net, seen_dropped))
    normal = [i for i, cell in enumerate(rows["cell"]) if cell == "normal"]
    assert [rows["acc"][i] for i in normal] == pytest.approx(accs)
    assert [rows["edge"][i] for i in normal if rows["decision"][i] == "drop"] == drops
    assert seen_dropped[:3] == dropped_during  # the normal cell's three steps
    assert seen_dropped[3] == set(drops)  # the reduction cell's round sees them gone
    for cell in ("normal", "reduce"):  # the reduction cell decides the same way
        assert {e for e in NODE5 if net.projection.is_dropped(cell, e)} == set(drops), cell


def test_without_topology_rounds_edges_rank_by_the_weight_of_their_kept_op():
    """Every op-projected row is one-hot (1.0), so ranking the projected weights ties every edge and keeps
    inputs 0 and 1 for every node; the rank must come from the trained alphas of the kept ops."""
    net = supernet("darts")
    ops = net.space.edge_ops("normal", 0)
    kept_op, strongest_op = ops.index("sep_conv_3x3"), ops.index("skip_connect")
    with torch.no_grad():
        for cell in net.space.cell_types:
            alphas = net.alphas[cell]
            alphas.zero_()
            for edge, (src, _) in enumerate(net.space.edges(cell)):
                alphas[edge, kept_op] = float(src)  # later inputs carry more weight on the kept op
                alphas[edge, strongest_op] = 6.0    # the heaviest op everywhere, never kept
    # removing sep_conv_3x3 is what hurts on every edge
    evaluate = scripted(lambda masked: 0.9 - 0.3 * sum(op == kept_op for _, _, op in masked))
    attach_base(evaluate, net)
    selection = PerturbationSelection(proj_intv=0, edge_order="fixed", topology=False)
    for round_index in range(len(projection_rounds(net.space, topology=False))):
        selection.decide(net, round_index, evaluate)
    assert all(not net.projection.undecided(cell) for cell in net.space.cell_types)
    choices = net.space.choices_from_genotype(selection.select(net, None, None))
    for cell in net.space.cell_types:
        edges = net.space.edges(cell)
        kept = {dst: sorted(edges[e][0] for e in choices[cell] if edges[e][1] == dst) for dst in (2, 3, 4, 5)}
        assert kept == {2: [0, 1], 3: [1, 2], 4: [2, 3], 5: [3, 4]}, (cell, kept)
        assert set(choices[cell].values()) == {"sep_conv_3x3"}


def test_random_edge_order_is_seeded_and_stateless():
    picks = {}
    for seed in (0, 1):
        net = supernet("nb201")
        evaluate = scripted(lambda masked: 0.5)
        attach_base(evaluate, net)
        selection = PerturbationSelection(proj_intv=0, seed=seed)
        order = []
        for round_index in range(6):
            selection.decide(net, round_index, evaluate)
            order.append(next(e for e in net.projection.fixed["cell"] if e not in order))
        picks[seed] = order
        assert sorted(order) == list(range(6))
    assert picks[0] != picks[1]
    net = supernet("nb201")
    evaluate = scripted(lambda masked: 0.5)
    attach_base(evaluate, net)
    PerturbationSelection(proj_intv=0, seed=0).decide(net, 0, evaluate)
    assert list(net.projection.fixed["cell"]) == picks[0][:1]


def test_decisions_only_at_their_epochs():
    net = supernet("nb201")
    evaluate = scripted(lambda masked: 0.5)
    attach_base(evaluate, net)
    selection = PerturbationSelection(proj_intv=3)
    assert [selection.decide(net, k, evaluate) is not None for k in range(17)] == [k % 3 == 0 for k in range(16)] + [
        False]
    assert net.projection.decided_count() == 6 and selection.finetunes(0)
    assert not PerturbationSelection(proj_intv=0).finetunes(0)


@pytest.mark.parametrize("options, message", [
    ({"criterion": "accuracy"}, "selection.perturbation.criterion = 'accuracy'"),
    ({"edge_order": "sorted"}, "selection.perturbation.edge_order = 'sorted'"),
    ({"topology_drop": "later"},
     "selection.perturbation.topology_drop = 'later': must be one of after_round, immediate"),
])
def test_bad_options(options, message):
    with pytest.raises(ConfigError, match=message):
        PerturbationSelection(**options)


@pytest.mark.parametrize("key, value, message", [
    ("finetune_lr_schedule", "linear",
     "selection.finetune_lr_schedule = 'linear': must be one of 'constant', 'cosine'"),
    ("topology_drop", "at_once", "selection.topology_drop = 'at_once': must be one of 'after_round', 'immediate'"),
])
def test_bad_settings_in_a_config(key, value, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"selection": {"name": "perturbation", key: value}})
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_workers_need_an_unsharded_perturbation_search():
    with pytest.raises(ConfigError, match=r"selection.workers = 2: must be 1 with resources.shards = 2"):
        config_from_dict({"selection": {"name": "perturbation", "workers": 2}, "resources": {"shards": 2}})
    with pytest.raises(ConfigError, match=r"selection.workers = 2: must be 1 with selection.name = 'magnitude'"):
        config_from_dict({"selection": {"workers": 2}})


# ------------------------------------------------------------------------------------------------ trained
EDGE = 3  # NB201 edge 0 -> 3, the cell's direct path from input to output


def trained_search() -> Search:
    """An NB201 supernet whose cells pass signal only through edge 0 -> 3, trained 4 epochs on clean digits
    with fixed alphas: on that edge 'none' has the largest weight (0.62) and skip_connect the second (0.37),
    so the network's accuracy rests on the skip connection while magnitude sees 'none' first."""
    cfg = config_from_dict({
        "space": "nb201",
        "data": {"name": "digits", "limit": 600},
        "supernet": {"channels": 4, "layers": 1},
        "search": {"epochs": 4, "batch_size": 32, "seed": 0, "eval_derived": False},
        "selection": {"name": "perturbation", "proj_intv": 0, "edge_order": "fixed"},
    })
    search = Search(cfg)
    for edge in range(6):
        if edge != EDGE:
            search.model.projection.keep_op("cell", edge, NB201_OPS.index("none"))
    with torch.no_grad():
        alphas = search.model.alphas["cell"]
        alphas.fill_(-4.0)
        alphas[EDGE, 0] = 2.0  # none
        alphas[EDGE, 1] = 1.5  # skip_connect
    for group in search.arch_optimizer.param_groups:
        group["lr"] = 0.0  # keep the hand-set alphas while the weights learn
    while search.epoch < cfg.search.epochs:
        search.run_epoch()
    return search


def test_magnitude_keeps_the_heaviest_op_perturbation_the_one_that_matters():
    search = trained_search()
    weights = search.model.arch_weights()["cell"][EDGE]
    assert int(weights.argmax()) == NB201_OPS.index("none") and int(weights[1:].argmax()) == 0
    magnitude = SELECTIONS.get("magnitude")(skip_disconnected=False).select(search.model, search.data, None)
    assert magnitude.edges()[EDGE] == ("none", 0, 3)  # magnitude keeps the op whose removal changes nothing
    _, supernet_acc = search.evaluate(search.eval_loader)
    report = search.run_epoch()  # the first stage epoch decides the one undecided edge
    rows = report["decisions"]
    assert set(rows["edge"]) == {EDGE}
    acc = dict(zip(rows["op"], rows["acc"]))
    # without 'none' the supernet computes the same function; without skip_connect it loses its signal path
    assert acc["none"] == pytest.approx(supernet_acc, abs=1e-9)
    assert acc["skip_connect"] < supernet_acc - 0.3, acc
    kept = rows["op"][rows["decision"].index("keep")]
    assert kept == "skip_connect" and search.model.projection.choices()["cell"][EDGE] == "skip_connect"
    assert search.genotype.edges()[EDGE] == ("skip_connect", 0, 3)
