"""raynas.report and `raynas report` on a real (tiny) NB201 experiment with an evaluation run of its genotype."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from raynas.errors import ConfigError, ResultsError
from raynas.report import write_report
from raynas.results import ResultsWriter, load_table, summarise_trial, rows_from_report

ROOT = Path(__file__).resolve().parents[2]
TRIALS = {"t0": {"search.seed": 0, "search.arch_lr": 0.01}, "t1": {"search.seed": 1, "search.arch_lr": 0.003}}
EPOCHS = 3
NASTY = "a<b & c>d"  # user text that must come out escaped
FAILED = {"trial_id": "t2_failed", "status": "ERROR", "space": "nb201", "method": "darts", "seed": 2,
          "overrides_json": json.dumps({"search.seed": 2, "note": NASTY}), "epochs_done": 0,
          "error": f"diverged: loss {NASTY}"}
RUN = "eval-run"
EVAL_EPOCHS = 4
VOID = {"meta", "img", "br", "hr", "link", "input"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real NB201 searches of 3 short epochs (no Ray) and a failed trial, written as an experiment's
    tables with its config.yaml, plus an evaluation run of the best genotype over two seeds."""
    from raynas.config import dump_config, load_config
    from raynas.search import Search

    folder = tmp_path_factory.mktemp("report") / "smoke-nb201"
    folder.mkdir()
    writer = ResultsWriter(folder, folder.name)
    for trial_id, overrides in TRIALS.items():
        cfg = load_config(ROOT / "search_configs/smoke/nb201.yaml",
                          [f"{key}={value}" for key, value in overrides.items()]
                          + [f"search.epochs={EPOCHS}", "search.steps_per_epoch=2", "data.limit=64",
                             "search.threads=1"])
        search = Search(cfg)
        history = []
        for _ in range(EPOCHS):
            report = search.run_epoch()
            writer.write_rows(trial_id, rows_from_report(trial_id, report))
            history.append({k: v for k, v in report.items() if k != "alphas"})
        search.close()
        writer.write_trial(summarise_trial(trial_id, history, cfg.tune.metric, cfg.tune.mode, experiment=folder.name,
                                           status="TERMINATED", space="nb201", method="darts",
                                           seed=overrides["search.seed"], overrides=overrides))
    writer.write_trial(FAILED)
    writer.consolidate()
    dump_config(cfg, folder / "config.yaml")
    with open(folder / "config.yaml", "a") as fh:
        fh.write(f"# {NASTY}\n")

    best = load_table(folder, "trials").to_pylist()[0]
    run_dir = folder / "evaluations" / RUN
    run_dir.mkdir(parents=True)
    (run_dir / "evaluation.yaml").write_text(f"name: {RUN}\nspace: nb201\nseeds: [0, 1]\nepochs: {EVAL_EPOCHS}\n")
    eval_writer = ResultsWriter(run_dir, RUN)
    for seed in (0, 1):
        accs = [0.3 + 0.1 * e + 0.02 * seed for e in range(EVAL_EPOCHS)]
        eval_writer.write_evaluation({
            "trial_id": f"ev_s{seed}", "status": "TERMINATED", "space": "nb201", "dataset": "digits",
            "genotype": best["genotype"], "source": str(folder), "source_trial": best["trial_id"], "seed": seed,
            "params": 12345, "flops": 2000000, "macs": 1000000, "epochs": EVAL_EPOCHS, "epochs_done": EVAL_EPOCHS,
            "train_loss": 0.5, "train_acc": 0.8, "test_loss": 0.6, "test_acc": accs[-1], "best_test_acc": accs[-1],
            "best_epoch": EVAL_EPOCHS, "epoch_train_loss": [1.0 - 0.1 * e for e in range(EVAL_EPOCHS)],
            "epoch_train_acc": accs, "epoch_test_loss": [1.1 - 0.1 * e for e in range(EVAL_EPOCHS)],
            "epoch_test_acc": accs, "wall_time_s": 3.0 + seed})
    eval_writer.consolidate(["evaluations"])
    return folder


@pytest.fixture(scope="module")
def html_report(experiment: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = write_report(experiment, tmp_path_factory.mktemp("html") / "r.html")
    assert path.name == "r.html" and not list(path.parent.glob(".*"))  # no temporary file left behind
    return path.read_text(encoding="utf-8")


class _Checker(HTMLParser):
    """Collects the text of a page and fails on unbalanced tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.images: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.stack == [], f"unclosed tags {checker.stack}"
    return checker


def _check_png(data: bytes) -> None:
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    image = imread(io.BytesIO(data), format="png")
    assert image.shape[0] > 300 and image.shape[1] > 600
    assert float(np.std(image[..., :3])) > 0.01  # not blank


def _expected_pictures(experiment: Path, top: int = 3) -> int:
    trials = load_table(experiment, "trials").to_pylist()
    genotypes = {row["genotype"] for row in trials if row["genotype"]}
    return min(len(genotypes), top) + 1 + 1 + 1 + 1  # cells, curves, alphas, population (arch_lr), evaluation curves


def test_html_report_is_one_self_contained_page_with_every_trial(experiment, html_report):
    page = _parse(html_report)
    text = "".join(page.text)
    trials = load_table(experiment, "trials").to_pylist()
    assert {row["trial_id"] for row in trials} == {"t0", "t1", "t2_failed"}
    for row in trials:
        assert row["trial_id"] in text
        if row["genotype"]:
            assert row["genotype"] in text
    for trial_id in ("ev_s0", "ev_s1"):
        assert trial_id in text
    sections = ["Summary", "Trials", "Best genotypes (top 3)", "Curves",
                "Architecture weights of the best trial", "Population", "Selection decisions",
                "Evaluation results", "Per-genotype summary", "Test accuracy over epochs", "Resolved config"]
    positions = [text.index(title) for title in sections]
    assert positions == sorted(positions)
    assert "smoke-nb201: nb201, darts" in text and "results of 20" in text  # title and date
    assert "No selection decisions" in text  # an empty section says so
    assert "search.arch_lr" in text and "0.003" in text  # the varied overrides are columns
    # no external resource, no script: every src is a data URI
    assert "script" not in page.tags and "link" not in page.tags
    assert re.findall(r'(?:src|href)="(?!data:|#)', html_report) == []
    assert len(page.images) >= _expected_pictures(experiment)
    for src in page.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        _check_png(base64.b64decode(src[len(prefix):], validate=True))


def test_html_report_escapes_user_text(html_report):
    page = _parse(html_report)
    text = "".join(page.text)
    assert f"# {NASTY}" in text  # the config comment reads back as written
    assert f"diverged: loss {NASTY}" in text  # the error of the failed trial
    assert text.count(NASTY) == 3  # ... and its override value, in the column of the key it varies
    assert NASTY not in html_report and "a&lt;b &amp; c&gt;d" in html_report


def test_report_summarises_the_evaluations_per_genotype(html_report):
    text = "".join(_parse(html_report).text)
    accs = [0.3 + 0.1 * (EVAL_EPOCHS - 1) + 0.02 * seed for seed in (0, 1)]
    mean, std = float(np.mean(accs)), float(np.std(accs, ddof=1))
    assert f"{mean:.4f} ± {std:.4f}" in text
    # the summary at the top shows it beside the best trial's genotype, before the trials table
    summary = text[text.index("Summary", text.index("Resolved config")):text.index("Trials", text.index("rank"))]
    assert "test acc from scratch" in summary and f"{mean:.4f} ± {std:.4f} (n=2)" in summary
    assert "2/2" in text and "12,345" in text and "1,000,000" in text and f"{EVAL_EPOCHS}/{EVAL_EPOCHS}" in text


def test_markdown_report_links_existing_pictures(experiment, tmp_path):
    out = tmp_path / "md" / "summary.md"
    assert write_report(experiment, out, fmt="MD", top=1) == out
    text = out.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == _expected_pictures(experiment, top=1)
    for link in links:
        assert link.startswith("summary_files/") and not Path(link).is_absolute()
        _check_png((out.parent / link).read_bytes())
    for trial_id in ("t0", "t1", "t2_failed", "ev_s0", "ev_s1"):
        assert trial_id in text
    assert "Best genotypes (top 1)" in text
    assert r"a\<b & c\>d" in text  # markdown markup in user text is escaped
    assert sorted(p.name for p in (out.parent / "summary_files").iterdir()) == sorted(Path(link).name for link in links)


def test_an_evaluation_run_alone_gets_its_evaluations(experiment, tmp_path):
    run_dir = experiment / "evaluations" / RUN
    path = write_report(run_dir, tmp_path / "run.html")
    page = _parse(path.read_text(encoding="utf-8"))
    text = "".join(page.text)
    assert "seeds: [0, 1]" in text and "Evaluation plan" in text
    assert text.index("Per-genotype summary", text.index("Evaluation plan")) < text.rindex("Evaluation plan")
    assert "details" in page.tags and text.rstrip().endswith("seeds: [0, 1]\nepochs: 4")  # the plan: last, folded
    assert "ev_s0" in text and "ev_s1" in text and "Per-genotype summary" in text
    assert f"{RUN}: nb201, evaluation on digits" in text
    assert "Trials" not in text and "t1" not in text  # nothing of the search
    assert len(page.images) == 2 and "G1: nb201 cell" in text  # the curves and the genotype's cell diagram
    for image in page.images:
        _check_png(base64.b64decode(image.split(",", 1)[1]))
    # markdown: a report written again leaves no stale picture of an earlier one behind
    (tmp_path / "run_files").mkdir()
    (tmp_path / "run_files" / "old.png").write_bytes(b"x")
    md = write_report(run_dir, tmp_path / "run.md", fmt="md")
    assert sorted(p.name for p in (tmp_path / "run_files").iterdir()) == ["cell_G1_cell.png",
                                                                          "evaluations_test_acc.png"]
    assert "(run_files/evaluations_test_acc.png)" in md.read_text()


def test_default_path_and_refusals(experiment, tmp_path):
    run_dir = experiment / "evaluations" / RUN
    assert write_report(run_dir) == run_dir / "report.html" and (run_dir / "report.html").stat().st_size > 0
    with pytest.raises(ConfigError, match=r"^unknown report format 'pdf' \(--format\); valid formats: html, md$"):
        write_report(experiment, tmp_path / "x.pdf", fmt="pdf")
    with pytest.raises(ConfigError, match=r"^--top must be an integer >= 1 .*got 0$"):
        write_report(experiment, tmp_path / "x.html", top=0)
    with pytest.raises(ResultsError, match=r"^report folder .* is not a raynas results folder: expected config"):
        write_report(tmp_path)
    with pytest.raises(ResultsError, match="does not exist"):
        write_report(tmp_path / "missing")
    with pytest.raises(ResultsError, match=r"^--out .* is a folder; give the report's file path"):
        write_report(run_dir, tmp_path)
    assert not list(tmp_path.rglob("*.html")) and not list(tmp_path.rglob("*.pdf"))


def test_importing_report_imports_neither_torch_nor_ray():
    code = "import sys, raynas.report; print(sorted({'torch', 'ray'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raynas.cli", "report", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_cli_report_prints_the_path(experiment, tmp_path):
    out = tmp_path / "cli.md"
    proc = _cli(str(experiment / "evaluations" / RUN), "--out", str(out), "--format", "md", "--top", "2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    assert "ev_s1" in out.read_text() and list((tmp_path / "cli_files").glob("*.png"))


def test_cli_report_error_is_one_line_with_exit_2(tmp_path):
    proc = _cli(str(tmp_path))
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: ")
    assert "not a raynas results folder" in proc.stderr
