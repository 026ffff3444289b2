"""``tune.variants`` and ``tune.grid.variant``: named presets of several settings as one axis of a grid
(raynas.config.variants), their one-line errors, and the E2NAS autoencoder of a population whose E2NAS trials
come from a variant (raynas.e2nas.prepare.prepare_for_trials)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from raynas.config import config_from_dict, config_to_dict, expand_trials, load_config, trial_label, with_overrides
from raynas.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

BASE = {
    "name": "variants", "space": "nb201",
    "data": {"name": "digits", "noise_std": 1.0, "limit": 64},
    "supernet": {"channels": 4, "layers": 1},
    "search": {"epochs": 2, "arch_lr": 0.01},
    "objectives": {"na": {"neighbors": 7}},  # the config's own NA settings: a variant's section replaces them
    "tune": {
        "grid": {"search.seed": [0, 1], "variant": ["darts", "darts-2nd", "na-rs", "plain"]},
        "variants": {
            "darts": {"objectives.na": None},
            "darts-2nd": {"search.order": 2, "objectives.na": None},
            "na-rs": {"method": "rs", "selection.name": "sampling", "objectives.na": {}},
            "plain": {},
        },
    },
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "variants.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def trials_of(tmp_path: Path, *overrides: str) -> list:
    return expand_trials(load_config(write(tmp_path, BASE), list(overrides)))


def test_each_trial_runs_its_variants_settings_and_keeps_only_the_name(tmp_path):
    trials = trials_of(tmp_path)
    assert [trial_label(t) for t in trials[:4]] == [
        "search.seed=0,variant=darts", "search.seed=0,variant=darts-2nd", "search.seed=0,variant=na-rs",
        "search.seed=0,variant=plain"]  # the grid's first key varies slowest: seed-major
    by_label = {trial_label(t): t.config for t in trials}
    darts, second, na_rs, plain = (by_label[f"search.seed=1,variant={name}"]
                                   for name in ("darts", "darts-2nd", "na-rs", "plain"))
    assert (darts.method, darts.search.order, darts.objectives.na, darts.search.seed) == ("darts", 1, None, 1)
    assert (second.search.order, second.objectives.na) == (2, None)
    assert (na_rs.method, na_rs.selection.name) == ("rs", "sampling")
    assert na_rs.objectives.na.neighbors == 4  # the variant's {} is NA with its defaults, not the config's 7
    assert plain.objectives.na.neighbors == 7 and plain.method == "darts"  # {}: the config as it is
    assert {t.config.variant for t in trials} == {"darts", "darts-2nd", "na-rs", "plain"}


def test_a_trials_config_reads_back_as_itself_and_the_trainable_rebuilds_it(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    base = config_to_dict(cfg)
    for trial in expand_trials(cfg):
        assert config_from_dict(config_to_dict(trial.config)) == trial.config  # a variant applied twice: once
        assert config_from_dict(with_overrides(base, trial.overrides)) == trial.config  # as the trainable does


def test_the_config_may_run_one_variant_itself(tmp_path):
    data = {**BASE, "tune": {"variants": BASE["tune"]["variants"]}, "variant": "darts-2nd"}
    [trial] = expand_trials(load_config(write(tmp_path, data)))
    assert (trial.config.search.order, trial.config.objectives.na, trial.overrides) == (2, None, {})


@pytest.mark.parametrize("overrides, message", [
    (["tune.grid.variant=[darts, nope]"],
     "tune.grid['variant']: 'nope' is not an entry of tune.variants (defined: 'darts', 'darts-2nd', 'na-rs', "
     "'plain')"),
    (["variant=darts"], "variant = 'darts': tune.grid['variant'] varies it too; set it in one of them"),
    (["tune.variants.darts-2nd={search.order: 3}"],
     "tune.variants['darts-2nd']: sets search.order = 3: must be one of 1, 2"),
    (["tune.variants.darts-2nd={search.ordr: 2}"], "tune.variants['darts-2nd']: search.ordr: unknown key"),
    (["tune.variants.darts-2nd={search.seed: 5}"],
     "tune.variants['darts-2nd']: sets search.seed, which tune.grid or tune.params varies too (search.seed); "
     "set it in one of them"),
    (["tune.variants.darts-2nd={tune.metric: val_acc}"],
     "tune.variants['darts-2nd']: sets tune.metric, which a variant cannot set"),
    (["tune.variants.darts-2nd={resources.cpus_per_trial: 2}"],
     "tune.variants['darts-2nd']: sets resources.cpus_per_trial, which a variant cannot set"),
    (["tune.variants.darts-2nd={selection.workers: 2}"],
     "tune.variants['darts-2nd']: sets selection.workers, which shapes every trial's Ray resources"),
    (["tune.variants.darts-2nd={objectives.sd: {placement: actor}}"],
     "tune.variants['darts-2nd']: changes where SD-DARTS' teachers live"),
    (["tune.variants.na-rs={method: rs}"],
     "selection.name = 'magnitude': must be one of 'perturbation', 'sampling' with method = 'rs'"),
    (["tune.variants.x=3"], "tune.variants['x'] = 3: must be a mapping of dotted config keys to values"),
    (["tune.grid={search.seed: [0, 1]}"],
     "tune.variants: 4 variant(s) defined ('darts', 'darts-2nd', 'na-rs', 'plain') but no trial runs one; add "
     "tune.grid.variant: [name, ...] or set variant"),
    (["tune.variants={}"], "tune.grid['variant']: tune.variants is empty; define each variant there"),
    (["tune.searcher=random", "tune.params={variant: {choice: [darts]}}"],
     "tune.params['variant']: a variant sets several settings at once and cannot be drawn"),
    (["tune.searcher=random", "tune.scheduler=pbt", "tune.params={search.arch_lr: {uniform: [0.001, 0.01]}}"],
     "tune.grid['variant']: not allowed with tune.scheduler 'pbt'"),
])
def test_bad_variants_are_one_line_errors_naming_the_entry(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as raised:
        trials_of(tmp_path, *overrides)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_config_that_names_an_undefined_variant_is_refused(tmp_path):
    data = {key: value for key, value in BASE.items() if key != "tune"}
    with pytest.raises(ConfigError, match=r"variant = 'darts': not an entry of tune.variants \(defined: none\)"):
        load_config(write(tmp_path, {**data, "variant": "darts"}))


def test_validate_lists_what_each_variant_runs_and_refuses_a_bad_one_in_one_line(tmp_path):
    path = write(tmp_path, BASE)
    ok = subprocess.run([sys.executable, "-m", "raynas.cli", "validate", str(path)], capture_output=True, text=True,
                        cwd=ROOT, timeout=120)
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[0].startswith(f"ok: {path}: 8 trial(s), space nb201, method darts + na")
    assert lines[1:5] == ["  variant darts: method darts, data digits, 2 epochs",
                          "  variant darts-2nd: method darts (order 2), data digits, 2 epochs",
                          "  variant na-rs: method rs, data digits, 2 epochs + 1 epoch of sampling selection",
                          "  variant plain: method darts + na, data digits, 2 epochs"]
    bad = subprocess.run([sys.executable, "-m", "raynas.cli", "validate", str(path), "--set",
                          "tune.grid.variant=[nope]"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("error: tune.grid['variant']: 'nope' is not an entry") and bad.stderr.count("\n") == 1


def test_variants_may_set_the_space_and_validate_names_it(tmp_path):
    """One population over several spaces (search_configs/spaces_pt.yaml): each trial searches its variant's
    space, and validate says which space each variant runs."""
    data = {"name": "spaces", "space": "s1", "data": {"name": "digits", "limit": 64},
            "supernet": {"channels": 4, "layers": 3}, "search": {"epochs": 2},
            "tune": {"grid": {"search.seed": [0], "variant": ["s4-pt", "nonone", "base"]},
                     "variants": {"s4-pt": {"space": "s4", "selection.name": "perturbation"},
                                  "nonone": {"space": "darts-nonone"}, "base": {}}}}
    path = write(tmp_path, data)
    assert [t.config.space for t in expand_trials(load_config(path))] == ["s4", "darts-nonone", "s1"]
    ok = subprocess.run([sys.executable, "-m", "raynas.cli", "validate", str(path)], capture_output=True, text=True,
                        cwd=ROOT, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[1:4] == [
        "  variant s4-pt: space s4, method darts, data digits, 2 epochs + 81 epochs of perturbation selection",
        "  variant nonone: space darts-nonone, method darts, data digits, 2 epochs",
        "  variant base: method darts, data digits, 2 epochs"]


def test_e2nas_trials_of_a_variant_inherit_one_checked_autoencoder(tmp_path):
    import torch

    from raynas.e2nas import pretrain, save
    from raynas.e2nas.prepare import prepare_for_trials

    torch.set_num_threads(1)
    model, _ = pretrain("nb201", samples=200, epochs=1, hidden=16)
    wide, _ = pretrain("nb201", samples=200, epochs=1, hidden=16, latent=12)
    save(model, tmp_path / "ae.pt")
    save(wide, tmp_path / "ae12.pt")
    data = {**BASE, "tune": {"grid": {"variant": ["darts", "e2nas", "e2nas-released"]},
                             "variants": {"darts": {"objectives.na": None},
                                          "e2nas": {"method": "e2nas", "objectives.na": None},
                                          "e2nas-released": {"method": "e2nas", "e2nas.estimator": "released",
                                                             "objectives.na": None}}}}
    for name, fits in (("ae.pt", True), ("ae12.pt", False)):
        cfg = load_config(write(tmp_path, {**data, "e2nas": {"autoencoder": str(tmp_path / name)}}))
        trials = [trial.config for trial in expand_trials(cfg)]
        if fits:
            prepared = prepare_for_trials(cfg, trials, tmp_path, echo=lambda _: None)
            assert prepared.method == "darts" and prepared.e2nas.autoencoder == str(tmp_path / "ae.pt")
        else:  # the released estimator reads a 30-d latent as NB201's 6 edges x 5 ops
            with pytest.raises(ConfigError, match=r"with e2nas.estimator = 'released'"):
                prepare_for_trials(cfg, trials, tmp_path, echo=lambda _: None)
    plain = load_config(write(tmp_path, {**data, "tune": {"grid": {"variant": ["darts"]},
                                                          "variants": data["tune"]["variants"]}}))
    assert prepare_for_trials(plain, [t.config for t in expand_trials(plain)], tmp_path) is plain  # no E2NAS


def test_a_population_with_pretrain_per_search_pretrains_one_autoencoder_per_search_seed(tmp_path):
    import torch

    from raynas.e2nas import load
    from raynas.e2nas.prepare import AUTOENCODER_FILE, prepare_for_trials, search_autoencoder, seed_file

    torch.set_num_threads(1)
    variants = {"e2nas": {"method": "e2nas", "objectives.na": None},
                "e2nas-own": {"method": "e2nas", "e2nas.pretrain_per_search": True, "objectives.na": None}}
    data = {**BASE, "e2nas": {"pretrain_epochs": 1},
            "tune": {"grid": {"search.seed": [0, 3], "variant": ["e2nas", "e2nas-own"]}, "variants": variants}}
    cfg = load_config(write(tmp_path, data))
    trials = [trial.config for trial in expand_trials(cfg)]
    lines: list[str] = []
    prepared = prepare_for_trials(cfg, trials, tmp_path, echo=lines.append)
    shared = tmp_path / AUTOENCODER_FILE
    assert prepared.e2nas.autoencoder == str(shared.resolve())
    assert sorted(p.name for p in tmp_path.glob("e2nas_autoencoder*.pt")) == [AUTOENCODER_FILE, seed_file(0),
                                                                            seed_file(3)]
    pretrained = [line for line in lines if line.startswith("raynas: pretraining")]
    assert len(pretrained) == 2 and "seed 3" in pretrained[1]  # seed 0's own is the shared file, copied
    resolved = {(t.config.search.seed, t.config.e2nas.pretrain_per_search):  # as the trainable builds them
                search_autoencoder(config_from_dict(with_overrides(config_to_dict(prepared), t.overrides)))
                for t in expand_trials(cfg)}
    assert resolved[(3, False)].e2nas.autoencoder == str(shared.resolve())  # the shared file for every seed
    assert resolved[(3, True)].e2nas.autoencoder == str(shared.resolve().with_name(seed_file(3)))
    weights = {seed: load(resolved[(seed, True)].e2nas.autoencoder).state_dict() for seed in (0, 3)}
    first = next(iter(weights[0]))
    assert not torch.equal(weights[0][first], weights[3][first])  # pretrained with each search's seed
    assert torch.equal(weights[0][first], load(str(shared)).state_dict()[first])  # seed 0 is the shared one's

    named = load_config(write(tmp_path, {**data, "e2nas": {"autoencoder": str(shared), "pretrain_per_search": True},
                                         "tune": {"grid": {"variant": ["e2nas"]}, "variants": variants}}))
    with pytest.raises(ConfigError, match=r"e2nas.autoencoder = .*must be unset with e2nas.pretrain_per_search"):
        prepare_for_trials(named, [t.config for t in expand_trials(named)], tmp_path, echo=lambda _: None)
