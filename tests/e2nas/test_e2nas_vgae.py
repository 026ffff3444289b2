"""E2NAS groundwork: cell encoding (round trips, always-valid decoding), the VGAE's pretraining, files, and
the straight-through architecture weights of a latent."""

from __future__ import annotations

import pytest
import torch

from raynas.e2nas import (DROPPED, ArchVGAE, decode, encode, enumerate_choices, is_valid, layouts, load, one_hot,
                          pretrain, relaxed_weights, sample_choices, save, to_choices)
from raynas.errors import ConfigError, GenotypeError, SpaceError
from raynas.spaces import get_space

DARTS_LIKE = ["darts", "darts-nonone", "s1", "s2", "s3", "s4"]
ALL_SPACES = ["nb201", *DARTS_LIKE]


def kept_scores(indices: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Input-selection scores that keep exactly the edges ``indices`` keep."""
    return {cell: (t != DROPPED).float() for cell, t in indices.items()}


def distance(a: dict, b: dict) -> int:
    """Edges (over all cell types) whose op or kept state differs."""
    return sum(a[cell].get(e) != b[cell].get(e) for cell in a for e in set(a[cell]) | set(b[cell]))


@pytest.fixture(scope="module")
def nb201_model():
    # Measured (seed 0, hidden 32, 2 epochs, 14,063 training cells): held-out reconstruction 0.998, per-edge
    # 0.9997, prior validity 1.0; ~11 s of training on one loaded core (seed 1: held-out 0.995).
    return pretrain("nb201", epochs=2, hidden=32, holdout=0.1, seed=0, prior_samples=500)


# -- encoding ----------------------------------------------------------------------------------------------
def test_every_nb201_cell_round_trips():
    cells = enumerate_choices("nb201")
    assert len(cells) == 15_625 == len({tuple(sorted(c["cell"].items())) for c in cells})
    indices = encode("nb201", cells)
    assert indices["cell"].shape == (15_625, 6) and int(indices["cell"].min()) >= 0
    assert to_choices("nb201", indices) == cells
    assert decode("nb201", one_hot("nb201", indices)) == cells
    assert all(is_valid("nb201", c) for c in cells[::97])


@pytest.mark.parametrize("name", DARTS_LIKE)
def test_sampled_darts_like_cells_round_trip(name):
    space = get_space(name)
    cells = sample_choices(name, 200, seed=1)
    assert cells == sample_choices(name, 200, seed=1) and cells != sample_choices(name, 200, seed=2)
    indices = encode(name, cells)
    for cell in space.cell_types:
        assert (indices[cell] != DROPPED).sum(dim=1).tolist() == [8] * 200  # 2 kept inputs x 4 nodes
    assert decode(name, one_hot(name, indices), kept_scores(indices)) == cells
    assert all(is_valid(name, c) for c in cells)


@pytest.mark.parametrize("name", ALL_SPACES)
def test_random_logits_always_decode_to_valid_cells(name):
    generator = torch.Generator().manual_seed(0)
    draws = 400
    op_logits, input_logits = {}, {}
    for cell, layout in layouts(name).items():
        ops = torch.randn(draws, layout.num_edges, layout.num_ops, generator=generator) * 5
        ops[:50] = 0.0  # ties everywhere
        ops[50:100, :, 0] = float("inf")  # column 0 (often `none`) wins every edge unless it is masked
        ops[100:120] = float("-inf")  # no op scores above a masked one
        ops[120:140, :, -1] = float("nan")
        op_logits[cell] = ops
        if layout.selects_inputs():
            scores = torch.randn(draws, layout.num_edges, generator=generator) * 5
            scores[:50] = 0.0
            scores[100:150] = float("-inf")
            input_logits[cell] = scores
    decoded = decode(name, op_logits, input_logits or None)
    assert len(decoded) == draws
    assert all(is_valid(name, c) for c in decoded)
    assert all("none" not in c[cell].values() for c in decoded for cell in c) or name == "nb201"
    if name == "nb201":  # `none` is a valid NB201 op and column 0: the inf rows must pick it
        assert all(set(c["cell"].values()) == {"none"} for c in decoded[50:100])


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(SpaceError, match="'nb202'.*nb201"):
        encode("nb202", [])
    with pytest.raises(SpaceError, match="too large to enumerate"):
        enumerate_choices("darts")
    darts_cell = sample_choices("darts", 1, seed=0)[0]
    broken = {cell: dict(edges) for cell, edges in darts_cell.items()}
    broken["normal"][next(iter(broken["normal"]))] = "none"
    with pytest.raises(GenotypeError, match="'none' is not allowed"):
        encode("darts", [broken])
    crowded = {**darts_cell["normal"], **{e: "sep_conv_3x3" for e in range(9, 14)}}  # every edge into node 5
    with pytest.raises(GenotypeError, match="keeps 5 edge\\(s\\) into node 5; expected 2"):
        encode("darts", [{**darts_cell, "normal": crowded}])
    with pytest.raises(SpaceError, match=r"shape \[\.\.\., 6, 5\], got \[4, 6, 4\]"):
        decode("nb201", {"cell": torch.zeros(4, 6, 4)})
    with pytest.raises(SpaceError, match="needs input logits"):
        decode("darts", {cell: torch.zeros(2, 14, 8) for cell in ("normal", "reduce")})
    model = ArchVGAE("nb201", hidden=8, latent=4)
    with pytest.raises(SpaceError, match=r"shape \[\.\.\., 4\], got \[5\]"):
        model.decode({"cell": torch.zeros(5)})
    with pytest.raises(SpaceError, match=r"op columns -1\.\.5; allowed: 0\.\.4 or -1"):
        model.encode({"cell": torch.tensor([[0, 1, 2, 3, 5, -1]])})
    with pytest.raises(ConfigError, match="holdout must be a share in \\[0, 1\\), got 1.5"):
        pretrain("nb201", epochs=1, holdout=1.5)


# -- pretraining ---------------------------------------------------------------------------------------
def test_pretrain_reconstructs_held_out_nb201_cells(nb201_model):
    model, metrics = nb201_model
    assert (metrics["train_cells"], metrics["holdout_cells"]) == (14_063, 1_562)
    assert metrics["holdout_recon_acc"] >= 0.95  # measured 0.998 (see the fixture)
    assert metrics["holdout_edge_acc"] >= 0.99
    assert metrics["train_recon_acc"] >= 0.95
    assert metrics["prior_validity"] == 1.0
    assert metrics["prior_unique"] > 0.5  # the prior covers many cells, not a collapsed few
    cells = sample_choices("nb201", 64, seed=5)
    hits = sum(a == b for a, b in zip(model.reconstruct(cells), cells))
    assert hits >= 58


def test_pretrain_is_seeded_and_leaves_the_global_rng_alone():
    rng_before = torch.get_rng_state()
    seen = []
    runs = [pretrain("nb201", samples=300, epochs=2, hidden=16, latent=6, seed=seed, prior_samples=10,
                     progress=seen.append)[0] for seed in (3, 3, 4)]
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert [p["epoch"] for p in seen] == [1, 2] * 3
    same, other = runs[0].state_dict(), runs[1].state_dict()
    assert same.keys() == other.keys() and all(torch.equal(same[k], other[k]) for k in same)
    assert not all(torch.equal(same[k], runs[2].state_dict()[k]) for k in same)


def test_darts_pretrain_smoke():
    model, metrics = pretrain("darts", samples=200, epochs=1, hidden=16, latent=8, seed=0, prior_samples=100)
    assert metrics["prior_validity"] == 1.0 and metrics["train_cells"] == 200
    z = {cell: torch.randn(20, 8, generator=torch.Generator().manual_seed(1)) for cell in model.layouts}
    assert all(is_valid("darts", c) for c in model.decode(z))


def test_save_and_load_round_trip(nb201_model, tmp_path):
    model, _ = nb201_model
    path = tmp_path / "vgae.pt"
    save(model, path)
    payload = torch.load(path, weights_only=True)
    assert payload["config"] == {"space": "nb201", "latent": 30, "hidden": 32, "layers": 3}
    loaded = load(path)
    assert loaded.config() == model.config()
    z = {"cell": torch.randn(200, 30, generator=torch.Generator().manual_seed(2))}
    assert torch.equal(loaded.decode_logits(z)[0]["cell"], model.decode_logits(z)[0]["cell"])
    assert loaded.decode(z) == model.decode(z)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="not a readable E2NAS autoencoder file"):
        load(tmp_path / "junk.pt")
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "missing.pt")


# -- straight-through architecture weights ---------------------------------------------------------------
def test_straight_through_weights_pull_the_decoded_cell_toward_a_target(nb201_model):
    model, _ = nb201_model
    start, target = sample_choices("nb201", 2, seed=11)
    target_hot = one_hot("nb201", encode("nb201", [target]))["cell"][0]
    z = {"cell": model.embed([start])["cell"][0].clone().requires_grad_(True)}
    weights = relaxed_weights(model, z)["cell"]
    assert weights.shape == get_space("nb201").arch_shape("cell")
    assert torch.equal(weights.detach(), one_hot("nb201", encode("nb201", [start]))["cell"][0])
    (-(weights * target_hot).sum()).backward()
    assert z["cell"].grad is not None and z["cell"].grad.abs().sum() > 0

    before = distance(model.decode(z)[0], target)
    assert before > 0
    optimizer = torch.optim.Adam([z["cell"]], lr=0.2)
    for _ in range(60):
        optimizer.zero_grad()
        (-(relaxed_weights(model, z)["cell"] * target_hot).sum()).backward()
        optimizer.step()
    after = distance(model.decode(z)[0], target)
    assert after < before  # measured: 4 -> 2 (other seeds: 4 -> 1, 5 -> 2, 6 -> 2)


def test_straight_through_weights_of_darts_cells_are_one_hot_with_zero_dropped_rows():
    torch.manual_seed(0)
    model = ArchVGAE("darts", hidden=16, latent=8)
    z = {cell: torch.randn(8).requires_grad_(True) for cell in model.layouts}
    weights = relaxed_weights(model, z)
    decoded = model.decode_to_indices(z)
    expected = one_hot("darts", {cell: indices.unsqueeze(0) for cell, indices in decoded.items()})
    for cell in ("normal", "reduce"):
        w = weights[cell]
        assert w.shape == get_space("darts").arch_shape(cell) == (14, 8)
        assert torch.equal(w.detach(), expected[cell][0])
        dropped = decoded[cell] == DROPPED
        assert int(dropped.sum()) == 6 and torch.equal(w[dropped].detach(), torch.zeros(6, 8))
        assert torch.equal(w[:, 0].detach(), torch.zeros(14))  # `none` is never chosen
    # a loss on a dropped edge's row still reaches z, through the input-selection gate
    row = int(torch.nonzero(decoded["normal"] == DROPPED)[0])
    weights["normal"][row].sum().backward()
    assert z["normal"].grad.abs().sum() > 0


def test_straight_through_weights_drive_the_supernet_and_carry_gradient_to_z(nb201_model):
    model, _ = nb201_model
    torch.manual_seed(0)
    supernet = get_space("nb201").build_supernet(channels=4, layers=1, num_classes=3, in_channels=3)
    z = {"cell": (1e-3 * torch.randn(30)).requires_grad_(True)}
    logits = supernet(torch.randn(2, 3, 8, 8), relaxed_weights(model, z))
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2])).backward()
    assert z["cell"].grad is not None and z["cell"].grad.abs().sum() > 0
