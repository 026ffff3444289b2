"""The summary a search report opens with: how the trials are ranked, the best trials with their genotypes,
ground truth and trainings from scratch, and why fewer genotypes than asked may be shown."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Optional

from raynas.report.document import Section, Table, Text, cell

_STATUS_WORDS = {"ERROR": "failed", "RUNNING": "is still running", "TERMINATED": "finished"}


@dataclass(frozen=True)
class Ranking:
    """What a search's leaderboard ranks by: ``metric`` under ``mode`` at each trial's last epoch, in the
    leaderboard's ``column`` (``final_<metric>``)."""

    metric: str
    mode: str
    column: str

    def better(self) -> str:
        return "higher" if self.mode == "max" else "lower"

    def describe(self) -> str:
        """``final derived_val_acc: its value at each trial's last epoch, ...`` for a sentence."""
        return (f"final {self.metric}: its value at each trial's last epoch, whose genotype the trial returns "
                f"({self.better()} is better)")

    def beats(self, a: float, b: float) -> bool:
        """Whether value ``a`` ranks above ``b``."""
        return a > b if self.mode == "max" else a < b


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def genotype_shortfall(trials: list[dict[str, Any]], distinct: int, top: int) -> str:
    """Why only ``distinct`` (< ``top``) genotypes can be shown: too few trials, trials that derived none,
    trials that derived one a better trial already has; empty when ``distinct >= top``."""
    if distinct >= top:
        return ""
    reasons = []
    if len(trials) < top:
        reasons.append(f"the experiment has {_plural(len(trials), 'trial')}")
    missing = [row for row in trials if not row.get("genotype")]
    if missing:
        shown = ", ".join(f"{row['trial_id']} {_STATUS_WORDS.get(row['status'], row['status'])}" for row in missing)
        reasons.append(f"{len(missing)} of them derived no genotype ({shown})")
    repeated = len(trials) - len(missing) - distinct
    if repeated:
        reasons.append(f"{_plural(repeated, 'trial')} derived a genotype that a better-ranked trial also derived")
    return "; ".join(reasons)


def _from_scratch(evaluations: list[dict[str, Any]]) -> dict[str, str]:
    """Genotype -> the final test accuracy of its finished trainings from scratch (mean ± std, n)."""
    finals: dict[str, list[float]] = {}
    for row in evaluations:
        value = row.get("test_acc")
        if row.get("status") == "TERMINATED" and row.get("genotype") and value is not None and math.isfinite(value):
            finals.setdefault(row["genotype"], []).append(float(value))
    out = {}
    for genotype, values in finals.items():
        spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
        out[genotype] = f"{statistics.fmean(values):.4f}{spread} (n={len(values)})"
    return out


def _best_epoch_note(trials: list[dict[str, Any]], ranking: Ranking) -> Optional[str]:
    """A sentence when ranking each trial by its best epoch would crown another trial: one whose best value
    beats the winner's best (the ranking reads final values, which is why it does not win)."""
    winner = trials[0]
    if winner.get("metric_value") is None:
        return None
    rival = None
    for row in trials[1:]:
        if row.get("best_value") is not None and (rival is None or ranking.beats(row["best_value"],
                                                                                   rival["best_value"])):
            rival = row
    own_best = winner.get("best_value")
    if rival is None or (own_best is not None and not ranking.beats(rival["best_value"], own_best)):
        return None
    return (f"Trial {rival['trial_id']} reached {ranking.metric} {cell(rival['best_value'])} at epoch "
            f"{rival['best_value_epoch']}, better than the winner's best ({cell(own_best)}), but ended at "
            f"{cell(rival.get('metric_value'))} against the winner's final {cell(winner['metric_value'])}: trials "
            "are ranked by the genotype they return, their last epoch's (raynas results --scope best ranks by each "
            "trial's best epoch).")


def summary_section(trials: list[dict[str, Any]], ranking: Ranking, evaluations: list[dict[str, Any]],
                    top: int) -> Section:
    """The report's first section: the ranking in words, then the ``top`` best trials with their final
    value, best value, ground truth (scored searches), test accuracy from scratch (when trained) and genotype."""
    section = Section("Summary", "summary")
    if not trials:
        section.blocks.append(Text("No trial has reported yet: nothing to summarise."))
        return section
    statuses: dict[str, int] = {}
    for row in trials:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    section.blocks.append(Text(f"{_plural(len(trials), 'trial')} ("
                               + ", ".join(f"{n} {status}" for status, n in statuses.items())
                               + f"), ranked by {ranking.describe()}."))
    note = _best_epoch_note(trials, ranking)
    if note:
        section.blocks.append(Text(note))
    scored = any(row.get("final_gt_test_acc") is not None for row in trials)
    scratch = _from_scratch(evaluations)
    shown = [row for row in trials if row.get("metric_value") is not None][:top]
    if not shown:
        section.blocks.append(Text(f"No trial has a value of {ranking.metric} yet."))
        return section
    if len(shown) < top:
        why = (f"the experiment has {_plural(len(trials), 'trial')}" if len(trials) < top else
               f"only {_plural(len(shown), 'trial')} {'has' if len(shown) == 1 else 'have'} a value of "
               f"{ranking.metric} yet")
        section.blocks.append(Text(f"The best {len(shown)}, not {top}: {why}."))
    columns = ("rank", "trial id", f"final {ranking.metric}", f"best {ranking.metric} (epoch)",
               *(("gt test acc", "gt percentile") if scored else ()),
               *(("test acc from scratch",) if scratch else ()), "genotype")
    rows = []
    for rank, row in enumerate(shown, 1):
        best = (f"{cell(row['best_value'])} ({row['best_value_epoch']})" if row.get("best_value") is not None
                else "")
        rows.append((str(rank), row["trial_id"], cell(row["metric_value"]), best,
                     *((cell(row.get("final_gt_test_acc")), cell(row.get("final_gt_percentile"), 1))
                       if scored else ()),
                     *((scratch.get(row.get("genotype") or "", ""),) if scratch else ()),
                     cell(row.get("genotype"))))
    section.blocks.append(Table(columns, tuple(rows), code=frozenset({"genotype"})))
    if scored:
        section.blocks.append(Text("gt: the final genotype's ground truth, its test accuracy trained from scratch "
                                   "under the benchmark protocol and its percentile among the benchmark's cells."))
    return section
