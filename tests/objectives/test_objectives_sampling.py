"""Uniform path sampling (method rs): a stateless, seeded path per step that alone receives the gradients."""

from __future__ import annotations

import torch

from raynas.config import config_from_dict
from raynas.objectives import ComposedObjective, SearchEnv, StepContext, build_objective, term_names
from raynas.objectives.uniform_path import UniformPathTerm, sample_path
from raynas.spaces import get_space
from raynas.supernet import discrete_weights
from raynas.supernet.nb201 import NB201SearchCell
from raynas.supernet.projection import DROPPED, Projection


def context(step: int, seed: int = 0, steps_per_epoch: int = 10) -> StepContext:
    return StepContext(epoch=step // steps_per_epoch, step=step % steps_per_epoch, steps_per_epoch=steps_per_epoch,
                       epochs=3, weight_lr=0.1, device=torch.device("cpu"), seed=seed)


def nb201_supernet(seed: int = 0):
    torch.manual_seed(seed)
    return get_space("nb201").build_supernet(channels=4, layers=1, num_classes=3, in_channels=1)


def test_rs_method_builds_the_path_term_only():
    cfg = config_from_dict({"space": "nb201", "method": "rs", "selection": {"name": "sampling"}})
    space = get_space("nb201")
    env = SearchEnv(space=space, num_classes=3, in_channels=1, device=torch.device("cpu"))
    objective = build_objective(cfg, env)
    assert term_names(cfg) == ["rs"] and [type(t) for t in objective.terms] == [UniformPathTerm]
    assert term_names(config_from_dict({"space": "nb201"})) == []
    # with rs, objectives.na is the sampling selection's scoring rule, not an architecture loss
    na_rs = config_from_dict({"space": "nb201", "method": "rs", "selection": {"name": "sampling"},
                              "objectives": {"na": {}}})
    assert term_names(na_rs) == ["rs"]


def test_the_path_depends_only_on_seed_and_global_step():
    space = get_space("nb201")
    model = nb201_supernet()
    first, second = UniformPathTerm(space), UniformPathTerm(space)  # e.g. two shards, or before and after resume
    a, b = first.path_weights(model, context(7)), second.path_weights(model, context(7))
    assert torch.equal(a["cell"], b["cell"])
    # the same global step reached with another epoch length gives the same path
    assert torch.equal(a["cell"], first.path_weights(model, context(7, steps_per_epoch=4))["cell"])
    paths = {str(sample_path(space, 0, step)) for step in range(6)}
    assert len(paths) > 1
    assert str(sample_path(space, 0, 3)) != str(sample_path(space, 1, 3))
    # each row is one-hot at the sampled genotype's op
    genotype = sample_path(space, 0, 7)
    assert torch.equal(a["cell"], discrete_weights(space, space.choices_from_genotype(genotype))["cell"])


def test_the_weight_step_trains_only_the_sampled_path():
    space = get_space("nb201")
    model = nb201_supernet()
    model.train()
    objective = ComposedObjective([UniformPathTerm(space)])
    ctx = context(4)
    torch.manual_seed(1)
    batch = (torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,)))
    objective.weight_loss(model, batch, ctx).backward()
    path = space.choices_from_genotype(sample_path(space, ctx.seed, ctx.global_step))["cell"]
    assert any(op in ("nor_conv_1x1", "nor_conv_3x3") for op in path.values())
    checked_on = checked_off = 0
    for cell in (m for m in model.cells if isinstance(m, NB201SearchCell)):
        for edge, mixed in enumerate(cell.mixed):
            for name, op in zip(mixed.op_names, mixed.ops):
                grads = [p.grad for p in op.parameters()]
                if not grads:
                    continue  # parameter-free ops (skip, pooling, none)
                if name == path[edge]:
                    assert all(g is not None for g in grads)
                    checked_on += 1
                else:
                    assert all(g is None for g in grads), (edge, name)
                    checked_off += 1
    assert checked_on and checked_off
    assert all(a.grad is None for a in model.arch_parameters())


def test_the_path_keeps_the_rows_a_selection_fixed():
    space = get_space("darts")
    torch.manual_seed(0)
    model = space.build_supernet(channels=4, layers=2, num_classes=3, in_channels=1)
    model.projection = Projection(space)
    term = UniformPathTerm(space)
    ctx = context(2)
    sampled = discrete_weights(space, space.choices_from_genotype(sample_path(space, 0, ctx.global_step)))
    assert all(torch.equal(w, sampled[c]) for c, w in term.path_weights(model, ctx).items())  # nothing fixed yet
    kept = int(sampled["normal"][0].argmax()) % 7 + 1  # another op than the sampled one, never "none"
    dropped = int(sampled["reduce"].sum(1).argmax())  # an edge on the sampled path
    model.projection.keep_op("normal", 0, kept)
    model.projection.drop_edge("reduce", dropped)
    path = term.path_weights(model, ctx)
    expected_row = torch.zeros(space.arch_shape("normal")[1])
    expected_row[kept] = 1.0
    assert torch.equal(path["normal"][0], expected_row)
    assert not path["reduce"][dropped].any() and model.projection.fixed["reduce"][dropped] == DROPPED
    assert torch.equal(path["normal"][1:], sampled["normal"][1:])
    others = [e for e in range(path["reduce"].shape[0]) if e != dropped]
    assert torch.equal(path["reduce"][others], sampled["reduce"][others])
