"""The digits data set: split sizes, disjointness, seeding, limit, resize, normalisation, fixed noise."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits

from raynas.config.schema import DataConfig
from raynas.data import load_data

N_DIGITS = 1797


def _x(dataset) -> torch.Tensor:
    return dataset.tensors[0]


def _y(dataset) -> torch.Tensor:
    return dataset.tensors[1]


def test_default_split_sizes_are_exact_and_disjoint() -> None:
    bundle = load_data(DataConfig())
    n_test = round(N_DIGITS * 0.2)
    n_search = N_DIGITS - n_test
    assert bundle.sizes() == {"train": n_search // 2, "val": n_search - n_search // 2, "test": n_test}
    idx = bundle.indices
    every = torch.cat([idx["train"], idx["val"], idx["test"]])
    assert len(every) == N_DIGITS and len(torch.unique(every)) == N_DIGITS
    assert (bundle.num_classes, bundle.in_channels, bundle.image_size) == (10, 1, 8)
    assert _x(bundle.train).shape == (n_search // 2, 1, 8, 8) and _x(bundle.train).dtype == torch.float32


def test_indices_point_at_the_samples_of_each_split() -> None:
    bundle = load_data(DataConfig())
    raw = load_digits()
    for split in ("train", "val", "test"):
        labels = torch.as_tensor(raw.target)[bundle.indices[split]]
        assert torch.equal(_y(getattr(bundle, split)), labels)
    # the clean inputs are an affine map of the raw pixels, so their order matches too
    raw_first = torch.as_tensor(raw.images[int(bundle.indices["test"][0])], dtype=torch.float32)
    ours_first = _x(bundle.test)[0, 0]
    assert torch.corrcoef(torch.stack([raw_first.flatten(), ours_first.flatten()]))[0, 1] > 0.9999


def test_test_split_is_stratified() -> None:
    counts = torch.bincount(_y(load_data(DataConfig()).test), minlength=10)
    expected = torch.bincount(torch.as_tensor(load_digits().target)) * 0.2
    assert (counts - expected).abs().max() <= 1


def test_same_config_gives_identical_tensors() -> None:
    a, b = load_data(DataConfig(seed=3, noise_std=0.5)), load_data(DataConfig(seed=3, noise_std=0.5))
    for split in ("train", "val", "test"):
        assert torch.equal(_x(getattr(a, split)), _x(getattr(b, split)))
        assert torch.equal(_y(getattr(a, split)), _y(getattr(b, split)))


def test_different_data_seed_gives_different_splits() -> None:
    a, b = load_data(DataConfig(seed=0)), load_data(DataConfig(seed=1))
    assert a.sizes() == b.sizes()
    for split in ("train", "val", "test"):
        assert not torch.equal(a.indices[split], b.indices[split])


def test_train_portion_divides_the_search_split() -> None:
    bundle = load_data(DataConfig(train_portion=0.7))
    n_search = N_DIGITS - round(N_DIGITS * 0.2)
    assert len(bundle.train) == round(n_search * 0.7)
    assert len(bundle.train) + len(bundle.val) == n_search


def test_limit_caps_the_search_split_and_keeps_the_test_split() -> None:
    full, small = load_data(DataConfig()), load_data(DataConfig(limit=100, train_portion=0.6))
    assert small.sizes() == {"train": 60, "val": 40, "test": full.sizes()["test"]}
    assert torch.equal(small.indices["test"], full.indices["test"])
    search = torch.cat([small.indices["train"], small.indices["val"]])
    assert set(search.tolist()) <= set(torch.cat([full.indices["train"], full.indices["val"]]).tolist())
    per_class = torch.bincount(torch.cat([_y(small.train), _y(small.val)]), minlength=10)
    assert per_class.min() >= 9 and per_class.max() <= 11


def test_limit_larger_than_the_data_set_uses_everything() -> None:
    assert load_data(DataConfig(limit=10**6)).sizes() == load_data(DataConfig()).sizes()


def test_image_size_resizes() -> None:
    big, small = load_data(DataConfig(image_size=16)), load_data(DataConfig(image_size=4))
    assert _x(big.train).shape[1:] == (1, 16, 16) and big.image_size == 16
    assert _x(small.test).shape[1:] == (1, 4, 4) and small.image_size == 4


def test_inputs_are_normalised() -> None:
    bundle = load_data(DataConfig())
    x = torch.cat([_x(bundle.train), _x(bundle.val), _x(bundle.test)])
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1.0) < 1e-3


def test_noise_has_the_requested_std_and_is_fixed() -> None:
    clean, noisy = load_data(DataConfig()), load_data(DataConfig(noise_std=0.7))
    assert torch.equal(clean.indices["train"], noisy.indices["train"])
    diff = _x(noisy.train) - _x(clean.train)
    assert abs(float(diff.std()) - 0.7) < 0.7 * 0.03
    assert abs(float(diff.mean())) < 0.02
    again = load_data(DataConfig(noise_std=0.7))
    assert torch.equal(_x(noisy.train), _x(again.train)) and torch.equal(_x(noisy.test), _x(again.test))


def _by_sample(bundle) -> torch.Tensor:
    """Every input of ``bundle`` at its position in the whole data set."""
    order = torch.cat([bundle.indices[s] for s in ("train", "val", "test")])
    inputs = torch.cat([_x(getattr(bundle, s)) for s in ("train", "val", "test")])
    out = torch.empty_like(inputs)
    out[order] = inputs
    return out


def test_a_sample_gets_the_same_noise_whatever_its_split() -> None:
    a = load_data(DataConfig(noise_std=1.0, train_portion=0.5, test_fraction=0.2))
    b = load_data(DataConfig(noise_std=1.0, train_portion=0.8, test_fraction=0.3))
    moved = set(b.indices["test"].tolist()) - set(a.indices["test"].tolist())
    assert len(moved) > 100
    assert torch.equal(_by_sample(a), _by_sample(b))


def test_different_seed_gives_different_noise() -> None:
    clean = _by_sample(load_data(DataConfig(seed=0)))
    noise_a = _by_sample(load_data(DataConfig(noise_std=0.5, seed=0))) - clean
    noise_b = _by_sample(load_data(DataConfig(noise_std=0.5, seed=1))) - _by_sample(load_data(DataConfig(seed=1)))
    assert float((noise_a - noise_b).std()) > 0.5
