"""A search report opens with a summary (ranking metric and scope, best trials, genotypes, ground truth), keeps
the config for last and folded, wraps long genotypes and says why it shows fewer genotypes than asked. Real
Parquet experiments written through the results writer; the page laid out by headless Chromium when there is
one."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from raynas.report import write_report
from raynas.results import ResultsWriter, summarise_trial, rows_from_report

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "results"))
from results_trainable_helper import make_report  # noqa: E402

# derived_val_acc per epoch: t0 peaks at epoch 2 and degrades, t1 rises and wins on its final epoch
ACCURACY = {"t0": (0.5, 0.9, 0.3), "t1": (0.2, 0.4, 0.6)}
DARTS = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
         "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
         "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
         "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
         "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
CONFIG = "name: exp\nspace: {space}\nmethod: darts\ndata:\n  name: digits\ntune:\n  metric: derived_val_acc\n" \
         "  mode: max\n  grid:\n    search.seed: [0, 1]\n"


def _experiment(folder: Path, *, scored: bool = False, darts: bool = False) -> Path:
    """Two trials of three epochs (ACCURACY), ranked by derived_val_acc; ``scored``: with ground truth;
    ``darts``: long DARTS genotypes (each trial its own) and no architecture weights."""
    writer = ResultsWriter(folder, folder.name)
    for seed, (trial_id, accs) in enumerate(ACCURACY.items()):
        rows = []
        for epoch, acc in enumerate(accs, 1):
            changes = {"derived_val_acc": acc}
            if scored:
                changes.update(gt_test_acc=0.7 + 0.05 * seed, gt_percentile=60.0 + 10 * seed, gt_regret=0.2)
            if darts:
                changes.update(genotype=DARTS.replace("dil_conv_3x3", ("dil_conv_3x3", "sep_conv_5x5")[seed]),
                               space="darts", alphas=None)
            report = make_report(epoch, seed, **changes)
            writer.write_rows(trial_id, rows_from_report(trial_id, report))
            rows.append({"epoch": epoch, **report})
        writer.write_trial(summarise_trial(trial_id, rows, "derived_val_acc", "max", experiment=folder.name,
                                           status="TERMINATED", seed=seed, method="darts",
                                           space="darts" if darts else "nb201", overrides={"search.seed": seed}))
    writer.consolidate()
    (folder / "config.yaml").write_text(CONFIG.format(space="darts" if darts else "nb201"))
    return folder


class _Sections(HTMLParser):
    """The page's sections in order: id -> (title, text), and the tags inside each."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: dict[str, dict] = {}
        self.current: dict | None = None
        self.in_h2 = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "section":
            self.current = {"title": "", "text": "", "tags": []}
            self.sections[dict(attrs)["id"]] = self.current
        elif self.current is not None:
            self.current["tags"].append(tag)
            self.in_h2 = tag == "h2"

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self.in_h2 = False
        if tag == "section":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.current is not None:
            self.current["title" if self.in_h2 else "text"] += data


def _sections(path: Path) -> dict[str, dict]:
    parser = _Sections()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.sections


def test_the_summary_comes_first_and_names_the_ranking(tmp_path):
    sections = _sections(write_report(_experiment(tmp_path / "exp", scored=True), tmp_path / "r.html"))
    ids = list(sections)
    assert ids[0] == "summary" and ids[-1] == "config"
    summary = sections["summary"]["text"]
    assert "ranked by final derived_val_acc: its value at each trial's last epoch, whose genotype the trial " \
           "returns (higher is better)" in summary
    # t0's best epoch beats the winner's: the summary says why t1 still wins
    assert "Trial t0 reached derived_val_acc 0.9000 at epoch 2, better than the winner's best (0.6000), but ended " \
           "at 0.3000 against the winner's final 0.6000" in summary and "--scope best" in summary
    assert summary.index("t1") < summary.index(make_report(3, 1)["genotype"])  # best trial, then its genotype
    assert make_report(3, 0)["genotype"] in summary
    for heading in ("final derived_val_acc", "best derived_val_acc (epoch)", "gt test acc", "gt percentile"):
        assert heading in summary, heading
    assert "0.9000 (2)" in summary and "0.7500" in summary and "70.0" in summary  # t0's best; t1's ground truth
    assert "The best 2, not 3: the experiment has 2 trials." in summary
    trials = sections["trials"]["text"]
    assert "final derived_val_acc (max)" in trials and "best derived_val_acc (epoch)" in trials


def test_the_config_is_last_and_folded(tmp_path):
    folder = _experiment(tmp_path / "exp")
    config = _sections(write_report(folder, tmp_path / "r.html"))["config"]
    assert config["tags"][:3] == ["h2", "details", "summary"] and "pre" in config["tags"]
    assert "config.yaml: the config every trial started from (10 lines; click to show)" in config["text"]
    assert "search.seed: [0, 1]" in config["text"]
    markdown = write_report(folder, tmp_path / "r.md", fmt="md").read_text()
    assert markdown.index("## Summary") < markdown.index("## Trials") < markdown.index("## Resolved config")
    folded = markdown[markdown.index("## Resolved config"):]
    assert re.search(r"<details><summary>config\.yaml: .*</summary>\n\n```\nname: exp\n", folded)
    assert folded.rstrip().endswith("```\n\n</details>")


def test_best_genotypes_say_why_fewer_than_asked(tmp_path):
    folder = _experiment(tmp_path / "exp")
    writer = ResultsWriter(folder, folder.name)
    writer.write_trial({"trial_id": "t9", "status": "ERROR", "seed": 9, "error": "ValueError: boom"})
    # a running trial that derived t0's final genotype (make_report(1, 0) ends on the same cell as (3, 0))
    report = make_report(1, 0, derived_val_acc=0.2)
    assert report["genotype"] == make_report(3, 0)["genotype"]
    writer.write_rows("t8", rows_from_report("t8", report))
    writer.write_trial(summarise_trial("t8", [report], "derived_val_acc", "max", experiment=folder.name, seed=8))
    sections = _sections(write_report(folder, tmp_path / "r.html", top=4))
    assert sections["genotypes"]["title"] == "Best genotypes (top 4)"
    assert ("2 distinct genotypes among the trials; the best 2 by the final derived_val_acc of their best trial. "
            "2 shown, not 4: 1 of them derived no genotype (t9 failed); 1 trial derived a genotype that a "
            "better-ranked trial also derived.") in sections["genotypes"]["text"]
    assert "#2: trial t0 (also t8)" in sections["genotypes"]["text"]
    assert "The best 3, not 4: only 3 trials have a value of derived_val_acc yet." in sections["summary"]["text"]


def test_long_genotypes_wrap_in_their_column(tmp_path):
    page = write_report(_experiment(tmp_path / "exp", darts=True), tmp_path / "r.html").read_text(encoding="utf-8")
    css = page[page.index("<style>"):page.index("</style>")]
    assert "td code { font-size: 0.95em; word-break: break-all; overflow-wrap: anywhere; }" in css
    assert "td.code { min-width: 12em; max-width: 32em; }" in css
    cells = re.findall(r'<td class="code"><code>([^<]*)</code></td>', page)
    assert len(cells) == 4 and all(len(text) > 300 for text in cells)  # the summary's and the trials' genotypes


CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)
PROBE = """<script>
const scroll = [...document.querySelectorAll('.scroll')].map(d => [d.scrollWidth, d.clientWidth]);
const code = [...document.querySelectorAll('td.code')].map(td => td.getBoundingClientRect().width);
const em = parseFloat(getComputedStyle(document.body).fontSize);
document.body.setAttribute('data-probe', JSON.stringify({scroll, code, em}));
</script></body>"""


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on this machine (apt-get install chromium)")
def test_chromium_lays_the_tables_out_without_overflow(tmp_path):
    """At 1,400 pixels the tables fit their boxes: the long genotypes wrap instead of widening them."""
    page = write_report(_experiment(tmp_path / "exp", darts=True), tmp_path / "r.html").read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE), encoding="utf-8")  # a copy: the report has no scripts
    run = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                          "--virtual-time-budget=3000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    found = re.search(r'data-probe="([^"]*)"', run.stdout)
    assert found, run.stderr[-2000:]
    probe_values = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(probe_values["scroll"]) == 2  # the summary and the trials
    for scroll_width, client_width in probe_values["scroll"]:
        assert scroll_width <= client_width, probe_values
    em = probe_values["em"] * 0.85  # the tables' font size
    assert len(probe_values["code"]) == 4 and all(w <= 32 * em + 2 * em for w in probe_values["code"]), probe_values
