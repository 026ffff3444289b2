"""SD-DARTS: the distillation loss, the voting rules, the snapshot schedule and local teachers in a search."""

from __future__ import annotations

import math

import pytest
import torch

from raynas.config import config_from_dict
from raynas.objectives.sd import (LocalTeachers, SelfDistillationTerm, combine_votes, default_interval,
                                  distillation_loss, merge_sums, snapshot_due, sum_votes, teacher_tags, vote)
from raynas.ranking import TIME_COLUMNS
from raynas.runtime import load_state, save_state
from raynas.search import Search
from raynas.supernet.build import build_supernet

TINY = {
    "space": "nb201",
    "data": {"name": "digits", "noise_std": 0.5, "limit": 256},  # 128 weight samples: 8 steps of 16
    "supernet": {"channels": 4, "layers": 1},
    "search": {"epochs": 2, "batch_size": 16, "arch_lr": 0.01, "seed": 3, "eval_derived": False},
}


def tiny(sd: dict | None = None, **search) -> Search:
    return Search(config_from_dict({**TINY, "search": {**TINY["search"], **search},
                                    "objectives": {"sd": {"teachers": 2, **(sd or {})}}}))


def strip(report: dict) -> dict:
    """A report without its timings, which legitimately differ between runs."""
    return {k: v for k, v in report.items() if k not in ("epoch_time_s", "reported_at", *TIME_COLUMNS)}


def sd_term(search: Search) -> SelfDistillationTerm:
    (term,) = [t for t in search.objective.terms if t.name == "sd"]
    return term


class Recorder(LocalTeachers):
    """Local teachers that record the tags of every question."""

    def __init__(self, inner: LocalTeachers) -> None:
        super().__init__(inner.pool)
        self.asked: list[list[int]] = []

    def request(self, x, tags):
        self.asked.append(list(tags))
        return super().request(x, tags)


def record(search: Search) -> Recorder:
    term = sd_term(search)
    term.teachers = Recorder(term.teachers)
    return term.teachers


# ---------------------------------------------------------------------------------------------- loss
def test_distillation_loss_equals_the_hand_computed_kl():
    # tau = 2, beta = 0.5; sample 1: student uniform, teacher (1/2, 1/4, 1/4); sample 2: student logits
    # (4, 0, 0) / 2 = (2, 0, 0), teacher one-hot on class 0 (a hard vote)
    student = torch.tensor([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0]])
    teacher = torch.tensor([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]])
    kl_1 = 0.5 * math.log(0.5 / (1 / 3)) + 2 * 0.25 * math.log(0.25 / (1 / 3))  # 0.0588915
    kl_2 = math.log((math.exp(2) + 2) / math.exp(2))  # -log q_0 = 0.2395448
    expected = 0.5 * 2 ** 2 * (kl_1 + kl_2) / 2  # beta * tau^2 * batch mean = 0.2984363
    loss = distillation_loss(student, teacher, temperature=2.0, weight=0.5)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert loss.item() == pytest.approx(0.2984363, abs=1e-6)


def test_distillation_loss_is_zero_when_the_student_agrees_and_on_an_empty_batch():
    z = torch.tensor([[1.0, -2.0, 0.5]])
    agree = torch.softmax(z / 4.0, dim=1)
    assert distillation_loss(z, agree, 4.0, 0.5).item() == pytest.approx(0.0, abs=1e-7)
    empty = torch.zeros(0, 3, requires_grad=True)
    assert distillation_loss(empty, torch.zeros(0, 3), 4.0, 0.5).item() == 0.0


def test_distillation_gradient_pulls_the_student_toward_the_teacher():
    z = torch.zeros(1, 3, requires_grad=True)
    distillation_loss(z, torch.tensor([[1.0, 0.0, 0.0]]), 1.0, 1.0).backward()
    assert z.grad[0, 0] < 0 < z.grad[0, 1]


# -------------------------------------------------------------------------------------------- voting
def test_soft_voting_is_the_mean_of_tempered_probabilities():
    tau = 2.0
    a = torch.log(torch.tensor([[0.5, 0.25, 0.25]])) * tau  # softmax(a / tau) = (0.5, 0.25, 0.25)
    b = torch.log(torch.tensor([[0.1, 0.2, 0.7]])) * tau
    assert torch.allclose(vote([a, b], tau, "soft"), torch.tensor([[0.3, 0.225, 0.475]]), atol=1e-6)


def test_hard_voting_follows_the_majority_not_the_summed_probability():
    confident = torch.tensor([[10.0, 0.0, 0.0]])  # class 0, almost surely
    unsure = torch.tensor([[0.0, 0.1, 0.0]])  # class 1, barely
    prob_sum, votes = sum_votes([confident, unsure, unsure], 1.0)
    assert prob_sum[0, 0] > prob_sum[0, 1]
    assert votes.tolist() == [[1.0, 2.0, 0.0]]
    assert vote([confident, unsure, unsure], 1.0, "hard").tolist() == [[0.0, 1.0, 0.0]]


def test_hard_voting_tie_goes_to_the_larger_summed_probability_then_the_lowest_index():
    a = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 0.0, 3.0], [0.0, 2.0, 0.0]])
    # sample 0: one vote each for 0 and 2, and class 2's summed probability is larger (1.12 vs 0.62)
    # sample 1: one vote each for 0 and 1 with equal summed probabilities: the lower index wins
    assert vote([a, b], 1.0, "hard").tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]


def test_partial_answers_merge_to_the_whole_answer():
    torch.manual_seed(0)
    logits = [torch.randn(4, 5) for _ in range(3)]
    whole = sum_votes(logits, 4.0)
    merged = merge_sums([sum_votes(logits[:2], 4.0), None, sum_votes(logits[2:], 4.0)])
    assert torch.equal(merged[0], whole[0]) and torch.equal(merged[1], whole[1])
    for voting in ("soft", "hard"):
        assert torch.allclose(combine_votes(*merged, 3, voting), vote(logits, 4.0, voting))
    with pytest.raises(ValueError):
        combine_votes(*whole, 3, "majority")


# ------------------------------------------------------------------------------------------ schedule
def test_snapshot_schedule_and_the_teacher_rule():
    assert [g for g in range(12) if snapshot_due(g, 4)] == [3, 7, 11]
    assert default_interval(8) == 2 and default_interval(3) == 1 and default_interval(0) == 1
    tags = [3, 7, 11, 15]
    assert teacher_tags(tags, 13, 2) == [7, 11]  # tags <= 11
    assert teacher_tags(tags, 12, 2) == [3, 7]  # 11 is too recent for step 12
    assert teacher_tags(tags, 12, 3) is None  # only two snapshots old enough
    assert teacher_tags(tags, 17, 3) == [7, 11, 15]
    assert teacher_tags([], 100, 1) is None


def test_a_search_snapshots_every_interval_and_asks_the_k_most_recent_old_enough():
    search = tiny()  # 8 steps an epoch: interval 2, snapshots after steps 1, 3, 5, ...
    recorder = record(search)
    first = search.run_epoch()
    term = sd_term(search)
    assert term.held_tags == [3, 5, 7]  # K + 1 = 3 kept
    # step G asks the 2 most recent tags <= G - 2: on from step 5 (tags 1 and 3)
    assert recorder.asked == [[1, 3], [1, 3], [3, 5]]
    assert first["sd_teachers"] == 2.0 and first["sd_kl"] > 0
    second = search.run_epoch()
    assert recorder.asked[3:] == [[3, 5], [5, 7], [5, 7], [7, 9], [7, 9], [9, 11], [9, 11], [11, 13]]
    assert term.held_tags == [11, 13, 15]
    assert second["sd_teachers"] == 2.0 and math.isfinite(second["sd_kl"])
    state = term.get_state()
    assert [(s["tag"], s["index"]) for s in state["snapshots"]] == [(11, 5), (13, 6), (15, 7)]
    assert state["taken"] == 8


def test_distillation_is_off_until_k_snapshots_exist():
    search = tiny({"teachers": 3}, steps_per_epoch=4, epochs=1)  # interval 1: tags 0..3
    recorder = record(search)
    report = search.run_epoch()  # on from step 4 (tags 0, 1, 2 <= 4 - 2): never in this epoch
    assert recorder.asked == []
    assert report["sd_teachers"] == 0.0 and "sd_kl" not in report
    assert sd_term(search).held_tags == [0, 1, 2, 3]


def test_the_teacher_prediction_is_the_snapshots_eval_mode_vote():
    search = tiny({"voting": "hard"}, epochs=1)
    search.run_epoch()
    term = sd_term(search)
    pool = term.teachers.pool
    x = next(iter(search.train_loader.epoch(0)))[0]
    logits = []
    for tag in (5, 7):
        snap = pool.snapshot(tag)
        model = build_supernet(search.cfg, search.data.num_classes, search.data.in_channels)
        model.load_state_dict(snap["model"])
        model.eval()
        with torch.no_grad():
            logits.append(model(x, snap["arch_weights"]))
    expected = vote(logits, 4.0, "hard")
    got = combine_votes(*pool.answer(x, [5, 7]), 2, "hard")
    assert torch.equal(got, expected)
    # eval mode: each sample's answer does not depend on the rest of the batch
    soft = combine_votes(*pool.answer(x, [5, 7]), 2, "soft")
    half = combine_votes(*pool.answer(x[:5], [5, 7]), 2, "soft")
    assert torch.allclose(half, soft[:5], atol=1e-6)


def test_second_order_asks_once_per_step_and_distill_arch_asks_on_the_val_batch():
    search = tiny(order=2, steps_per_epoch=6, epochs=1)  # interval 1 (6 // 4): on from step 3
    recorder = record(search)
    report = search.run_epoch()
    assert recorder.asked == [[0, 1], [1, 2], [2, 3]]  # weight_loss runs 4 times a step; asked once
    assert "sd_arch_kl" not in report

    search = tiny({"distill_arch": True}, steps_per_epoch=6, epochs=1)
    recorder = record(search)
    report = search.run_epoch()
    assert recorder.asked == [[0, 1], [0, 1], [1, 2], [1, 2], [2, 3], [2, 3]]  # arch, then weight, each step
    assert report["sd_arch_kl"] > 0 and report["sd_kl"] > 0


# ----------------------------------------------------------------------------------------- resume
def test_resume_restores_the_teachers_bit_for_bit(tmp_path):
    straight = tiny(epochs=3)
    straight.run_epoch()
    straight.run_epoch()
    path = str(tmp_path / "state.pt")
    save_state(straight.get_state(), path)
    straight_last = strip(straight.run_epoch())

    saved = load_state(path)  # weights_only: the snapshots are plain tensors, lists and dicts
    resumed = tiny(epochs=3)
    resumed.set_state(saved)
    restored = sd_term(resumed).get_state()
    for mine, theirs in zip(restored["snapshots"], saved["objective"]["sd"]["snapshots"], strict=True):
        assert (mine["tag"], mine["index"]) == (theirs["tag"], theirs["index"])
        for key, value in theirs["model"].items():
            assert torch.equal(mine["model"][key], value), key
        for cell, value in theirs["arch_weights"].items():
            assert torch.equal(mine["arch_weights"][cell], value)
    assert strip(resumed.run_epoch()) == straight_last
    for key, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key


def test_holding_teachers_leaves_the_searchs_random_stream_alone():
    search = tiny(epochs=1)
    state = torch.get_rng_state()
    sd_term(search).teachers.pool._new_module()
    assert torch.equal(torch.get_rng_state(), state)
