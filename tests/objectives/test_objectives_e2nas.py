"""E2NAS on a latent: the search's architecture parameters are the latents, complementation trains three
architectures, exploration pushes the latent away from the archive, and the whole search resumes exactly."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from raynas.config import config_from_dict, config_to_dict, load_config
from raynas.e2nas import DROPPED, encode, one_hot, sample_choices
from raynas.e2nas.encoding import layouts
from raynas.errors import ConfigError
from raynas.objectives import StepContext
from raynas.objectives.e2nas import complementary_indices, exploration_eta
from raynas.runtime import load_state, save_state
from raynas.search import Search
from raynas.spaces import get_space

REPO = Path(__file__).resolve().parents[2]


def e2nas_config(autoencoder: str, **e2nas):
    data = config_to_dict(load_config(str(REPO / "search_configs/smoke/e2nas.yaml")))
    data["e2nas"].update(autoencoder=autoencoder, **e2nas)
    return config_from_dict(data)


def context(epoch: int = 0, epochs: int = 2, step: int = 0) -> StepContext:
    return StepContext(epoch=epoch, step=step, steps_per_epoch=8, epochs=epochs, weight_lr=0.025,
                       device=torch.device("cpu"), seed=3)


def test_eta_explores_first_and_exploits_last():
    assert exploration_eta(0, 100) == pytest.approx(1.0, abs=1e-4)
    assert exploration_eta(50, 100) == pytest.approx(0.5)
    assert exploration_eta(100, 100) == pytest.approx(0.0, abs=1e-4)
    assert exploration_eta(25, 100) == pytest.approx(1 - 1 / (1 + math.exp(5)))


def test_complementary_architecture_changes_exactly_the_edges_both_architectures_agree_on():
    space = get_space("darts")
    current, previous = sample_choices("darts", 2, seed=4)
    now, before = encode(space, [current]), encode(space, [previous])
    now = {c: t[0] for c, t in now.items()}
    before = {c: t[0] for c, t in before.items()}
    before["normal"][:3] = now["normal"][:3]  # make some edges agree for sure
    comp = complementary_indices(space, now, before, torch.Generator().manual_seed(0))
    for cell, layout in layouts(space).items():
        for e in range(layout.num_edges):
            a, b, c = int(now[cell][e]), int(before[cell][e]), int(comp[cell][e])
            if a == DROPPED:
                assert c == DROPPED
            elif a == b:
                assert c != a and layout.allowed[e][c]  # another op a derived cell may use (never `none`)
            else:
                assert c == a
    # an architecture equal to its predecessor is complemented on every kept edge
    same = complementary_indices(space, now, now, torch.Generator().manual_seed(1))
    kept = now["normal"] != DROPPED
    assert bool((same["normal"][kept] != now["normal"][kept]).all())


def test_search_runs_in_the_latent_and_derives_the_decoded_cell(nb201_autoencoder):
    search = Search(e2nas_config(nb201_autoencoder))
    model = search.model
    z = model.arch_parameters()
    assert [tuple(p.shape) for p in z] == [(30,)] and z[0] is model.latent.z["cell"]
    weight_ids = {id(p) for p in model.weight_parameters()}
    assert id(z[0]) not in weight_ids and id(model.alphas["cell"]) not in weight_ids
    assert not any(id(p) in weight_ids for p in model.latent.autoencoder.parameters())
    frozen = {k: v.clone() for k, v in model.latent.autoencoder.state_dict().items()}
    start = z[0].detach().clone()
    reports = [search.run_epoch() for _ in range(2)]
    assert not torch.equal(z[0].detach(), start)  # the architecture optimizer moves the latent
    assert all(torch.equal(v, model.latent.autoencoder.state_dict()[k]) for k, v in frozen.items())
    for report in reports:
        decoded = model.latent.derived_genotype()
        assert report["discretization_gap"] == 0.0  # the supernet runs the decoded cell itself
        for key in ("e2nas_eta", "e2nas_density", "e2nas_changes", "e2nas_distinct", "e2nas_complement_loss"):
            assert math.isfinite(report[key]), key
    assert reports[-1]["genotype"] == str(decoded)
    assert reports[1]["e2nas_distinct"] >= reports[0]["e2nas_distinct"] >= 1
    # the alphas table holds the decoder's probabilities; their argmax is the decoded op
    table = reports[-1]["alphas"]
    choices = model.latent.decoded()["cell"]
    for e, op in choices.items():
        rows = [i for i, edge in enumerate(table["edge"]) if edge == e]
        best = max(rows, key=lambda i: table["weight"][i])
        assert table["op"][best] == op


def test_latent_gradient_moves_the_decoded_cell_toward_a_preferred_cell(nb201_autoencoder):
    """A constructed loss that rewards one known cell, through the supernet's own architecture weights and
    its architecture parameters: Adam on the latent brings the decoded cell to it."""
    search = Search(e2nas_config(nb201_autoencoder))
    model = search.model
    target = sample_choices("nb201", 1, seed=21)[0]
    target_hot = one_hot("nb201", encode("nb201", [target]))["cell"][0]

    def distance() -> int:
        decoded = model.latent.decoded()["cell"]
        return sum(decoded[e] != op for e, op in target["cell"].items())

    before = distance()
    assert before > 0
    optimizer = torch.optim.Adam(model.arch_parameters(), lr=0.05)
    for _ in range(150):
        optimizer.zero_grad()
        (-(model.arch_weights()["cell"] * target_hot).sum()).backward()
        optimizer.step()
    assert distance() < before


def test_complementation_trains_the_previous_and_the_complementary_architecture(nb201_autoencoder):
    search = Search(e2nas_config(nb201_autoencoder, complement=0.5))
    model, term = search.model, search.objective.terms[0]
    torch.manual_seed(0)
    batch = (torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,)))
    ctx = context(step=5)
    previous = {"cell": torch.tensor([0, 1, 2, 3, 4, 0])}
    term.previous = previous
    current = model.latent.decoded_indices()

    def grads(loss: torch.Tensor) -> list[torch.Tensor]:
        params = model.weight_parameters()
        return [g if g is not None else torch.zeros_like(p)
                for p, g in zip(params, torch.autograd.grad(loss, params, allow_unused=True))]

    with_terms = grads(search.objective.weight_loss(model, batch, ctx))

    from raynas.objectives.na import step_generator

    comp = complementary_indices(model.space, current, previous, step_generator("e2nas", 3, ctx.global_step))

    def loss_of(indices):
        w = one_hot("nb201", {c: t.unsqueeze(0) for c, t in indices.items()})
        return F.cross_entropy(model(batch[0], {c: t[0] for c, t in w.items()}), batch[1])

    by_hand = grads(0.5 * loss_of(current) + 0.25 * (loss_of(previous) + loss_of(comp)))
    only_current = grads(loss_of(current))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(with_terms, by_hand))
    # not only a logged number: the weights' gradient differs from the current architecture's alone
    assert max(float((a - 0.5 * b).abs().max()) for a, b in zip(with_terms, only_current)) > 1e-3
    # the weight step runs one-hot weights without a path to z; second order's finite differences keep it
    assert not any(w.requires_grad for w in term.path_weights(model, ctx).values())
    ctx.arch_grad = True
    assert term.path_weights(model, ctx) is None and term.weight_term(model, batch, lambda: None, ctx) is None


@pytest.mark.parametrize("mode", ["density", "detached", "none"])
def test_exploration_term_pushes_the_latent_away_from_the_archive(nb201_autoencoder, mode):
    search = Search(e2nas_config(nb201_autoencoder, exploration=mode))
    model, term = search.model, search.objective.terms[0]
    z = model.arch_parameters()[0]
    torch.manual_seed(1)
    batch = (torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,)))
    term.archive.append((1, (z.detach() + 0.3 * torch.randn(30)).clone()))
    term.archive.append((2, (z.detach() + 0.3 * torch.randn(30)).clone()))
    ctx = context(epoch=0, epochs=10)
    eta = exploration_eta(0, 10)
    loss = search.objective.arch_loss(model, batch, ctx)
    (grad,) = torch.autograd.grad(loss, [z])
    (ce_grad,) = torch.autograd.grad(F.cross_entropy(model(batch[0]), batch[1]), [z])
    if mode == "none":
        assert torch.allclose(grad, ce_grad)
    elif mode == "detached":  # the released code: only a rescaled step
        assert torch.allclose(grad, (1 - eta) * ce_grad, atol=1e-12)
    else:
        density_before = float(term.density(model).detach())
        with torch.no_grad():
            z -= 0.05 * grad / grad.norm()
        assert float(term.density(model).detach()) < density_before  # a step down the loss leaves the archive


def test_resume_continues_bit_for_bit_and_refuses_another_autoencoder(nb201_autoencoder, tmp_path):
    cfg = e2nas_config(nb201_autoencoder)
    straight = Search(cfg)
    first = straight.run_epoch()
    save_state(straight.get_state(), str(tmp_path / "state.pt"))  # a copy: the state dict holds live tensors
    state = load_state(str(tmp_path / "state.pt"))
    second = straight.run_epoch()
    resumed = Search(cfg)
    resumed.set_state(state)
    again = resumed.run_epoch()
    for key in ("train_loss", "val_loss", "genotype", "e2nas_density", "e2nas_distinct", "e2nas_complement_loss",
                "state_fingerprint"):
        assert again[key] == second[key], key
    assert first["state_fingerprint"] != second["state_fingerprint"]

    from raynas.e2nas import ArchVGAE, save

    save(ArchVGAE("nb201", hidden=8), tmp_path / "other.pt")  # untrained: other weights
    with pytest.raises(ConfigError, match="differs from the file this search started with"):
        Search(e2nas_config(str(tmp_path / "other.pt"))).set_state(state)


def test_second_order_reaches_the_latent(nb201_autoencoder):
    data = config_to_dict(e2nas_config(nb201_autoencoder))
    data["search"].update(order=2, epochs=1, steps_per_epoch=3)
    search = Search(config_from_dict(data))
    start = search.model.arch_parameters()[0].detach().clone()
    report = search.run_epoch()
    assert math.isfinite(report["train_loss"])
    assert not torch.equal(search.model.arch_parameters()[0].detach(), start)


@pytest.mark.parametrize("extra, message", [
    ({"objectives": {"na": {}}}, r"^objectives\.na = '\{\.\.\.\}': must be unset with method = 'e2nas'"),
    ({"objectives": {"ta": {}}}, r"^objectives\.ta = '\{\.\.\.\}': must be unset with method = 'e2nas'"),
    ({"selection": {"name": "perturbation"}}, r"^selection\.name = 'perturbation': must be 'magnitude'"),
    ({"e2nas": {"autoencoder": "/no/such/file.pt"}}, r"^e2nas\.autoencoder = '/no/such/file.pt': not an existing"),
    ({"e2nas": {"exploration": "random"}}, r"^e2nas\.exploration = 'random'"),
])
def test_combinations_that_make_no_sense_are_one_line_errors(extra, message):
    with pytest.raises(ConfigError, match=message) as info:
        config_from_dict({"method": "e2nas", **extra})
    assert "\n" not in str(info.value)


def test_a_search_built_directly_needs_an_autoencoder_file():
    cfg = load_config(str(REPO / "search_configs/smoke/e2nas.yaml"))
    with pytest.raises(ConfigError, match="e2nas.autoencoder is unset"):
        Search(cfg)
    sd = config_from_dict({**config_to_dict(cfg), "objectives": {"sd": {"teachers": 2}}})
    assert sd.objectives.sd is not None  # self-distillation composes with E2NAS


@pytest.mark.slow  # two whole searches (about 26 s): default suite budget; make test-all runs it
@pytest.mark.parametrize("extra", [
    {"selection": {"name": "sampling", "samples": 4}},
    {"objectives": {"sd": {"teachers": 2, "interval": 2}}},
], ids=["sampling-selection", "self-distillation"])
def test_e2nas_composes_with_sampling_selection_and_self_distillation(nb201_autoencoder, extra):
    data = config_to_dict(e2nas_config(nb201_autoencoder))
    data.update(extra)
    search = Search(config_from_dict(data))
    reports = []
    while not search.done:
        reports.append(search.run_epoch())
    if "selection" in extra:  # the stage scores 4 sampled cells with the shared weights and keeps the best
        assert len(reports) == 2 + 1 and reports[-1]["decided_edges"] == 6
        assert search.genotype == search.space.genotype_from_choices(search.model.projection.choices())
    else:
        assert search.objective.name == "e2nas+sd" and reports[-1]["sd_teachers"] == 2 and reports[-1]["sd_kl"] > 0
    assert all(math.isfinite(r["e2nas_distinct"]) for r in reports[:2])
