"""The ``raynas`` command line: thin wrappers that parse, call the library and print.

Heavy imports (torch, Ray) happen inside the commands, so ``raynas --help`` stays fast. Every
:class:`raynas.errors.RaynasError` becomes a one-line ``error: ...`` on stderr with exit code 2, and so do
click's usage errors (unknown option, bad value: :class:`RaynasGroup`) and, as a last resort, an OSError,
MemoryError or RecursionError no check caught (``RAYNAS_DEBUG=1`` shows their traceback instead).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from typing import Any, Callable, Iterator, Optional

import click

from raynas.errors import RaynasError

USAGE_ERROR = 2
INTERRUPTED = 130  # the shell's code for a command stopped by Ctrl+C (128 + SIGINT)


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a RaynasError into a one-line message and exit code 2."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RaynasError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(USAGE_ERROR)
    return wrapper


DEBUG_ENV = "RAYNAS_DEBUG"  # set to 1: last-resort errors show their traceback (exit 1) instead of one line


class _OneLineError(click.ClickException):
    """A ClickException that click shows as our one line, ``error: ...``, with its exit code."""

    def __init__(self, message: str, exit_code: int = USAGE_ERROR) -> None:
        super().__init__(message)
        # click's stubs declare exit_code a class variable; click reads it from the instance, per error
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


def _last_resort_message(err: BaseException) -> str:
    """One line for an error no check turned into a RaynasError: the file and the OS's reason, or what ran out."""
    if isinstance(err, OSError):
        where = f"'{err.filename}': " if err.filename is not None else ""
        return f"{where}{err.strerror or err}"
    if isinstance(err, MemoryError):
        return "out of memory (an input far too large?)"
    return "input nested too deeply to process (RecursionError)"


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """Turn click's usage errors, RaynasErrors raised outside a command's body (option callbacks) and, as a
    last resort, OSError, MemoryError and RecursionError into one line and exit code 2."""
    try:
        yield
    except (_OneLineError, getattr(click.exceptions, "NoArgsIsHelpError", _OneLineError)):
        raise  # already one line; or ``raynas`` alone, which prints the help
    except click.UsageError as err:
        where = f"; see '{err.ctx.command_path} --help'" if err.ctx is not None else ""
        raise _OneLineError(f"{err.format_message().rstrip('.')}{where}", err.exit_code) from None
    except click.ClickException as err:
        raise _OneLineError(err.format_message(), err.exit_code) from None
    except RaynasError as err:
        raise _OneLineError(str(err)) from None
    except BrokenPipeError:
        raise  # a closed pipe (raynas results | head): click ends quietly
    except (OSError, MemoryError, RecursionError) as err:
        if os.environ.get(DEBUG_ENV):
            raise
        raise _OneLineError(f"{_last_resort_message(err)} ({type(err).__name__}; {DEBUG_ENV}=1 shows the "
                            f"traceback)") from None


class OrderedGroup(click.Group):
    """A group whose help lists its commands in the order they were added (the workflow's), not sorted."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


#: the order ``raynas --help`` lists the commands in: as a user's work goes (a command missing here comes last)
WORKFLOW = ("search", "results", "plot", "report", "train", "export", "resume", "validate", "configs", "arch",
            "bench", "e2nas")


class RaynasGroup(click.Group):
    """The root command: every error a user can cause ends as one line ``error: ...`` (exit code 2), never as
    click's three-line usage message or a traceback (:func:`_one_line_errors`). Its help lists the commands
    in :data:`WORKFLOW` order, each with its whole one-line summary (``short_help``: click cuts a summary it
    derives from the docstring at about 45 characters, with "...")."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        known = [name for name in WORKFLOW if name in self.commands]
        return known + sorted(set(self.commands) - set(known))

    def make_context(self, info_name: Optional[str], args: list[str], parent: Optional[click.Context] = None,
                     **extra: Any) -> click.Context:
        with _one_line_errors():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _one_line_errors():  # subcommands parse and run inside: their errors pass here
            return super().invoke(ctx)


class CommaChoice(click.ParamType):
    """A comma-separated list of choices (``png,svg``), checked when the command line is parsed, as
    click.Choice checks one: case ignored, repeats dropped, an unknown or empty item a usage error naming the
    choices. The value is a tuple of the choices in the order given.
    """

    name = "choices"

    def __init__(self, choices: tuple[str, ...]) -> None:
        self.choices = choices

    def get_metavar(self, param: click.Parameter, ctx: Optional[click.Context] = None) -> str:
        return f"[{'|'.join(self.choices)}],..."

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> tuple[str, ...]:
        if isinstance(value, tuple):  # already converted (a default given as a tuple)
            return value
        items = [item.strip().lower() for item in str(value).split(",") if item.strip()]
        unknown = [item for item in items if item not in self.choices]
        if unknown:
            self.fail(f"{', '.join(map(repr, unknown))}: not among {', '.join(self.choices)} (comma-separated)",
                      param, ctx)
        if not items:
            self.fail(f"{value!r}: give one or more of {', '.join(self.choices)} (comma-separated)", param, ctx)
        return tuple(dict.fromkeys(items))


#: the formats of raynas plot, report and export (raynas.plots.style.FORMATS, raynas.report.write.REPORT_FORMATS,
#: raynas.export.EXPORT_FORMATS; written out so that --help imports none of them: a test compares them)
PLOT_FORMATS = ("png", "svg")
REPORT_FORMATS = ("html", "md")
EXPORT_FORMATS = ("pt2", "onnx")


def set_option(example: str, what: str = "config") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The ``--set KEY=VALUE`` option, its help showing ``example``: a key of the command's own settings (a
    search config's keys are not a training config's)."""
    return click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                        help=f"Override a {what} value, e.g. --set {example} (repeatable).")


SET_OPTION = set_option("search.epochs=5")


@click.group(cls=RaynasGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="raynas")
def main() -> None:
    """raynas: differentiable neural architecture search (DARTS family) orchestrated by Ray Tune."""
    # Nothing raynas writes is writable by group or others: raynas resume refuses such folders, since it
    # loads pickled code from them (raynas.folder_trust). Read permissions follow the user's umask.
    os.umask(os.umask(0o022) | 0o022)


@main.command(short_help="Run the population of searches a config describes.")
@click.argument("config", type=click.Path(dir_okay=False))
@SET_OPTION
@click.option("--address", default=None, help="Join this Ray cluster (host:port or 'auto') instead of "
                                               "starting a local one.")
@click.option("--out", default="raynas_results", show_default=True, type=click.Path(file_okay=False),
              help="Folder that receives the experiment folder <out>/<name>; or s3://BUCKET/PREFIX, "
                   "gs://BUCKET/PREFIX (docs/storage.md), which results, plot, report and resume then take as "
                   "DIRECTORY.")
@friendly_errors
def search(config: str, overrides: tuple[str, ...], address: str | None, out: str) -> None:
    """Run the population of searches described by CONFIG: a YAML file, or the name of a config shipped with
    raynas (raynas configs lists them; e.g. quickstart).

    Every setting is in the config reference, docs/config.md; the shipped configs are examples.

    Populations: tune.searcher grid (tune.grid), random or optuna (tune.params distributions) and
    tune.scheduler fifo, asha or pbt, ranked by tune.metric (default derived_params: the derived
    architecture's parameters, the best predictor of its quality measured, docs/ranking.md). Examples:
    asha_nb201.yaml, pbt_nb201.yaml, optuna_nb201.yaml.

    Shards: resources.shards=K trains each supernet as K data-parallel Ray actors (one per GPU with
    resources.gpus_per_shard=1). Example: shards_nb201.yaml.

    Selection: selection.name=perturbation (DARTS-PT) adds a stage after search.epochs that fixes the
    architecture edge by edge by the validation accuracy the supernet loses without each op, fine-tuning
    selection.perturbation.proj_intv epochs in between (raynas validate prints its length); every
    candidate is a row of the decisions table; selection.workers=N evaluates each decision's candidates on
    N Ray actors.
    Example: darts_pt_cifar10.yaml.

    Objectives: objectives.na (NA-DARTS: the architecture loss aggregated over sampled neighbours of the
    current architecture), objectives.sd (SD-DARTS: the weight step distils the voted prediction of K
    earlier supernet snapshots, held locally or, with placement actor, by Ray actors answering a batch
    ahead) and objectives.ta (TA-DARTS: an auxiliary model learns from the supernet's features by
    quadruple relative similarities after each weight step, and the architecture step adds the gradient
    of its validation loss through both unrolled steps) compose with each other, with search.order 1 and
    2, shards and any selection. method=rs with selection.name=sampling is weight-sharing random search,
    NA-RS with objectives.na. The neighbourhood representation, the distillation loss and voting, and
    TA-DARTS' formulation (QRS loss, auxiliary model, hypergradient) are our reconstruction [recon] of the
    papers (docs/methods.md). Examples: na_darts_cifar10.yaml, sd_darts_cifar10.yaml, ta_darts_cifar10.yaml,
    na_rs_nb201.yaml.

    E2NAS: method=e2nas searches in the latent space of a cell autoencoder (e2nas.autoencoder, from
    `raynas e2nas pretrain SPACE`; unset, one is pretrained into the experiment folder first), with a
    differentiable exploration density of recently visited cells and complementation (the weight step also
    trains the previous and a complementary cell). The density and the complementary cell's rule are our
    reconstruction [recon]. It composes with shards, second order, objectives.sd and the magnitude and
    sampling selections. Examples: e2nas_nb201.yaml, e2nas_darts_cifar10.yaml.

    Clusters: --address HOST:PORT joins a running Ray cluster (cluster/README.md).

    Fault tolerance: a trial whose process dies is retried from its last checkpoint up to
    tune.max_failures times (--set tune.max_failures=2); a diverged trial (NaN/inf loss) fails at once, is
    not retried, and makes the exit code 1; an interrupted run goes on with raynas resume <out>/<name>.
    """
    from raynas.config.shipped import resolve_config
    from raynas.experiment import prepare_experiment, run_experiment, summary_lines

    prepared = prepare_experiment(resolve_config(config), overrides, out=out, address=address)
    with resume_hint_on_interrupt(prepared.directory):
        outcome = run_experiment(prepared, echo=click.echo)
    for line in summary_lines(outcome):
        click.echo(line)
    if outcome.unfinished:
        sys.exit(INTERRUPTED)
    if outcome.num_errors:
        sys.exit(1)


@contextlib.contextmanager
def resume_hint_on_interrupt(directory: str | os.PathLike) -> Iterator[None]:
    """On a Ctrl+C that Ray Tune did not catch (pressed twice, or before Tune started): print how to resume
    the experiment instead of a traceback, and exit with code 130.

    A first Ctrl+C during the run is Tune's: it saves the state and returns, and the summary says how to
    resume (:func:`raynas.experiment.interrupted_lines`).
    """
    from pathlib import Path

    try:
        yield
    except KeyboardInterrupt:
        from raynas.experiment import interrupted_lines

        for line in interrupted_lines(Path(directory)):
            click.echo(line)
        sys.exit(INTERRUPTED)


@main.command(short_help="Continue an interrupted search, train run or benchmark build.")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--address", default=None, help="Join this Ray cluster (host:port or 'auto') instead of the "
                                               "experiment's own setting (default: as it was searched).")
@click.option("--accept-config-change", is_flag=True,
              help="Go on although the folder's config.yaml (evaluation.yaml, benchmark.yaml) changed since the "
                   "run started; the change is recorded in the folder and its events table.")
@click.option("--max-failures", type=int, default=None, metavar="N",
              help="In this run, retry a trial whose process dies up to N times from its last checkpoint (earlier "
                   "failures do not count) [default: the limit the run started with: tune.max_failures, or the "
                   "--max-failures of raynas train / bench build].")
@friendly_errors
def resume(directory: str, address: str | None, accept_config_change: bool, max_failures: int | None) -> None:
    """Continue the interrupted experiment in DIRECTORY (<out>/<name> of raynas search, an evaluation run
    folder of raynas train, or a build folder of raynas bench build).

    Finished trials stay finished; running and errored trials continue from their last checkpoint (a
    diverged trial is finished and stays failed). Prints the same summary as search (or train); exit code 1
    when a trial failed, 0 when the experiment had already finished.

    The folder is trusted like code (Ray Tune unpickles its saved state): one not owned by you, or writable
    by group or others, is refused; so is a folder another raynas command holds (its lock names the pid
    and host), and a settings file changed since the run started (the changed keys are named) unless
    --accept-config-change.

    --max-failures N: Ray Tune keeps each trial's retry limit in its saved state and cannot change it on a
    restore, so the limit is set on the restored trials: N more retries each in this run.
    """
    from pathlib import Path

    from raynas.experiment import resume_experiment, summary_lines
    from raynas.remote import local_folder
    from raynas.results import EVALUATION_PLAN

    from raynas.benchmark.build import is_build_folder

    directory = local_folder(directory, "DIRECTORY", logs=True)  # s3://, gs://: its working copy (docs/storage.md)

    if is_build_folder(directory):
        from raynas.benchmark.build import resume_build

        _finish_build(resume_build(directory, address=address, echo=click.echo,
                                   accept_config_change=accept_config_change, max_failures=max_failures))
        return
    if (Path(directory) / EVALUATION_PLAN).is_file():
        from raynas.evaluation import resume_evaluation

        _finish_evaluation(resume_evaluation(directory, address=address, echo=click.echo,
                                             accept_config_change=accept_config_change, max_failures=max_failures),
                           as_json=False)
        return

    with resume_hint_on_interrupt(directory):
        outcome = resume_experiment(directory, address=address, echo=click.echo,
                                    accept_config_change=accept_config_change, max_failures=max_failures)
    for line in summary_lines(outcome):
        click.echo(line)
    if outcome.unfinished:
        sys.exit(INTERRUPTED)
    if outcome.num_errors and not outcome.already_finished:
        sys.exit(1)


@main.command(short_help="Check a config and every trial of it, running nothing.")
@click.argument("config", type=click.Path(dir_okay=False))
@SET_OPTION
@friendly_errors
def validate(config: str, overrides: tuple[str, ...]) -> None:
    """Check CONFIG (a YAML file or a shipped config's name) and every trial of its population without running
    anything; says whether the search will record its derived cells' ground truth (section benchmark)."""
    from raynas.config import expand_trials, load_config
    from raynas.config.shipped import resolve_config
    from raynas.experiment import check_scoring

    cfg = load_config(resolve_config(config), overrides)
    trials = expand_trials(cfg)
    check_scoring(cfg, trials)
    click.echo(f"ok: {config}: {len(trials)} trial(s), space {cfg.space}, {_search_words(cfg)}")
    shown: set[str] = set()
    for trial in trials:  # a grid of variants: what each one runs, once
        name = trial.config.variant
        if name is not None and name not in shown and "variant" in trial.overrides:
            shown.add(name)
            space = f"space {trial.config.space}, " if "space" in cfg.tune.variants[name] else ""
            click.echo(f"  variant {name}: {space}{_search_words(trial.config)}")
    from raynas.benchmark.scoring import describe_scoring

    scoring = describe_scoring(cfg)  # whether the search will record its cells' ground truth
    if scoring:
        click.echo(scoring)


@main.command(short_help="List the search configs shipped with raynas.")
@friendly_errors
def configs() -> None:
    """List the search configs shipped with raynas: each name and its first comment line. Run one by its
    name (raynas search quickstart, raynas validate quickstart); copy its file to change more than --set
    does."""
    from raynas.config.shipped import SHIPPED_DIR, describe, shipped_configs

    shipped = shipped_configs()
    width = max(map(len, shipped), default=0)
    for name, path in shipped.items():
        click.echo(f"{name:<{width}}  {describe(path)}")
    click.echo(f"{len(shipped)} config(s) in {SHIPPED_DIR}; run one: raynas search NAME")


def _search_words(cfg: Any) -> str:
    """``method darts + na, data digits, 50 epochs + 26 epochs of perturbation selection``: what a search runs."""
    from raynas.objectives import term_names
    from raynas.selection import stage_epochs

    stage = stage_epochs(cfg)
    terms = [name for name in term_names(cfg) if name != cfg.method]
    return (f"method {cfg.method}" + (f" + {'+'.join(terms)}" if terms else "")
            + (f" (order {cfg.search.order})" if cfg.search.order != 1 else "")
            + f", data {cfg.data.name}, {cfg.search.epochs} epochs"
            + (f" + {stage} epoch{'s' if stage != 1 else ''} of {cfg.selection.name} selection" if stage else ""))


@main.command(short_help="Print an experiment's leaderboard or one of its tables.")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--table", "table_name", default=None,
              help="Print this table (trials, epochs, alphas, genotypes, decisions, evaluations, events) instead "
                   "of the leaderboard.")
@click.option("--metric", default=None, metavar="NAME",
              help="Rank the leaderboard by this reported metric (an epochs column, e.g. derived_val_acc or a "
                   "method's discretization_gap) [default: the search's tune.metric].")
@click.option("--mode", type=click.Choice(["max", "min"]), default=None,
              help="Whether higher (max) or lower (min) values rank first [default: tune.mode for the search's "
                   "metric; min for a loss, regret or time, else max].")
@click.option("--scope", type=click.Choice(["last", "best"]), default=None,
              help="Rank by the metric at each trial's last epoch, whose genotype the trial returns (column "
                   "final_NAME), or by its best value over the epochs (best_NAME, with that epoch's genotype) "
                   "[default: last].")
@click.option("--where", "where", default=None, metavar="EXPR",
              help="Keep the rows EXPR holds for: comparisons, and/or/not, in [...], .isin, .between, .isnull, "
                   ".str.contains/startswith/endswith (docs/results.md), e.g. \"method == 'darts' and seed > 0\".")
@click.option("--sort", "sort_keys", multiple=True, metavar="COLUMN",
              help="Order by COLUMN (-COLUMN: descending); repeat for ties.")
@friendly_errors
def results(directory: str, fmt: str, table_name: str | None, metric: str | None, mode: str | None,
            scope: str | None, where: str | None, sort_keys: tuple[str, ...]) -> None:
    """Print the leaderboard of an experiment folder (or one of its tables), optionally filtered and sorted.

    The leaderboard ranks the trials by --metric at --scope; its ranking column is named after both
    (final_derived_params: the metric at the last epoch; best_derived_val_acc with --scope best). Its
    filter sees every column of the trials table and the ranking column (status, method, seed, num_skip,
    genotype, final_derived_params, ...); a table's filter sees that table's columns, the epochs table's
    method metrics (discretization_gap, ...) among them.

    The epochs table prints each method metric of its extra map as a column (the map itself is left out).
    Times (reported_at, at) print as ISO-8601 UTC in the table format; csv and json keep unix seconds.

    An evaluation run folder (raynas train) prints its evaluations table; --table evaluations of a search
    folder gathers every evaluation run of its genotypes.
    """
    from pathlib import Path

    from raynas.remote import local_folder
    from raynas.results import EVALUATION_PLAN, format_table, leaderboard, load_table

    directory = local_folder(directory, "DIRECTORY")  # s3://, gs://: downloaded first (docs/storage.md)
    ranking = [f"--{name} {value}" for name, value in (("metric", metric), ("mode", mode), ("scope", scope))
               if value is not None]
    if table_name is None and (Path(directory) / EVALUATION_PLAN).is_file():
        table_name = "evaluations"  # an evaluation run folder has no leaderboard of searches
    if table_name and ranking:
        from raynas.errors import ConfigError

        raise ConfigError(f"{ranking[0]}: ranks the leaderboard, not --table {table_name}; allowed with --table: "
                          "--where, --sort, --format")
    if table_name:
        table = load_table(directory, table_name, where=where, sort=sort_keys)
        if table_name == "epochs":  # its method metrics are columns of their own: their map adds nothing
            table = table.drop_columns(["extra"])
    else:
        table = leaderboard(directory, metric, mode, scope=scope, where=where, sort=sort_keys)
    empty = "0 rows" + (f" (--where {where!r})" if where else "")
    click.echo(format_table(table, fmt, empty=empty).rstrip("\n"))
    if not table.num_rows and fmt != "table":
        click.echo(f"raynas: {empty}", err=True)  # stdout stays a parseable empty table


@main.command(short_help="Draw an experiment's cells, weights and curves as images.")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Folder for the pictures [default: DIRECTORY/plots].")
@click.option("--format", "formats", type=CommaChoice(PLOT_FORMATS), default="png,svg", show_default=True,
              help="Image formats, comma-separated.")
@click.option("--trial", "trials", multiple=True, metavar="ID",
              help="Only this trial (repeatable; default: every trial).")
@friendly_errors
def plot(directory: str, out_dir: str | None, formats: tuple[str, ...], trials: tuple[str, ...]) -> None:
    """Draw the pictures of the experiment in DIRECTORY (<out>/<name> of raynas search).

    Per trial: a diagram of each cell of its final genotype (cell_<trial>_<cell>) and its architecture
    weights per edge over epochs (alphas_<trial>_<cell>); per experiment: losses and accuracies over epochs
    with the data's chance level (curves), the derived cell's ground truth over epochs when the search was
    scored (ground_truth) and, for a population, the ranking metric against each varied override other than
    a seed (population_<key>), or its spread over the seeds when only seeds varied (population_seeds).
    Prints each written file.
    """
    from pathlib import Path

    from raynas.plots import plot_experiment
    from raynas.remote import display, local_folder, publish, refuse_uri

    refuse_uri("--out", out_dir, "the default, DIRECTORY/plots, goes to the storage of an s3:// or gs:// DIRECTORY")
    directory = local_folder(directory, "DIRECTORY")  # s3://, gs://: downloaded first, pictures uploaded
    paths = plot_experiment(directory, out_dir, formats=list(formats), trials=trials or None)
    for path in publish(directory, paths):
        click.echo(path)
    target = Path(out_dir) if out_dir is not None else Path(directory) / "plots"
    if paths:
        click.echo(f"wrote {len(paths)} file{'s' if len(paths) != 1 else ''} to {display(target)}")
    else:
        click.echo(f"no trial in {display(directory)} has reported yet: nothing to draw")


@main.command(short_help="Write one HTML (or Markdown) report of an experiment.")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--out", "out_path", default=None, type=click.Path(),
              help="The report file [default: DIRECTORY/report.html, or report.md with --format md].")
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS, case_sensitive=False), default="html",
              show_default=True,
              help="html: one self-contained page; md: Markdown plus a <name>_files/ folder of PNGs.")
@click.option("--top", type=int, default=3, show_default=True, help="Best distinct genotypes to draw.")
@friendly_errors
def report(directory: str, out_path: str | None, fmt: str, top: int) -> None:
    """Write one report of the experiment in DIRECTORY (<out>/<name> of raynas search, or an evaluation run).

    In order: title, a summary (the ranking metric and its scope, the --top best trials with their genotypes
    and, where present, ground truth and test accuracy from scratch), every trial, the best genotypes with
    their cell diagrams, curves (and the ground truth over epochs), architecture weights of the best trial,
    the population comparison, selection decisions, the evaluations (trainings from scratch, mean and std
    of test accuracy per genotype) and, folded at the end, the resolved config. Prints the path.
    """
    from raynas.remote import local_folder, publish, refuse_uri
    from raynas.report import write_report

    refuse_uri("--out", out_path, "the default, DIRECTORY/report.FORMAT, goes to the storage of an s3:// or gs:// "
               "DIRECTORY")
    directory = local_folder(directory, "DIRECTORY")  # s3://, gs://: downloaded first, the report uploaded
    path = write_report(directory, out_path, fmt=fmt, top=top)
    pictures = path.with_name(f"{path.stem}_files")  # md: its PNGs beside it
    click.echo(publish(directory, [path, *([pictures] if fmt == "md" and pictures.is_dir() else [])])[0])


@main.group(cls=OrderedGroup, short_help="Inspect architectures (genotypes).")
def arch() -> None:
    """Inspect architectures (genotypes)."""


@arch.command("show", short_help="Build a genotype's network: its size, whether it connects.")
@click.argument("genotype")
@click.option("--space", default=None, help="Search space of the genotype (default: guessed from the text: nb201 "
                                            "for an arch string |op~0|+|...|, darts for Genotype(...)).")
@click.option("--channels", type=int, default=None, help="Initial channels (default: the space's protocol).")
@click.option("--layers", type=int, default=None, help="Cells (darts) or cells per stage (nb201).")
@click.option("--classes", "num_classes", type=int, default=10, show_default=True)
@click.option("--in-channels", type=int, default=3, show_default=True)
@click.option("--auxiliary", is_flag=True, help="Build the auxiliary head (counted in params_total only).")
@click.option("--imagenet", is_flag=True, help="darts spaces: the ImageNet network.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def arch_show(genotype: str, space: str | None, channels: int | None, layers: int | None, num_classes: int,
              in_channels: int, auxiliary: bool, imagenet: bool, as_json: bool) -> None:
    """Build GENOTYPE's network and print its size and whether its cells are connected."""
    from raynas.arch import describe_architecture
    from raynas.spaces import guess_space

    info = describe_architecture(space or guess_space(genotype), genotype, channels=channels, layers=layers,
                                 num_classes=num_classes, in_channels=in_channels, auxiliary=auxiliary,
                                 imagenet=imagenet)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        click.echo(f"{key:>14}: {value}")


def _seed_list(ctx: Any, param: Any, value: str) -> list[int]:
    """``--seeds 0,1,2`` (or ``0-2``) as a list of ints, bounded (:func:`raynas.config.limits.parse_seeds`)."""
    from raynas.config.limits import parse_seeds

    return parse_seeds("--seeds", value)


@main.command(short_help="Train derived architectures from scratch, one trial each.")
@click.argument("sources", nargs=-1, metavar="SOURCE...")
@click.option("--space", default=None, help="Search space of genotype texts and files (default: darts for "
                                            "Genotype(...), nb201 for arch strings; a search folder's own space).")
@click.option("--dataset", default=None, help="Data set (default: a search folder's data settings, else digits).")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="Training settings as YAML (docs/config.md, training config).")
@click.option("--epochs", type=int, default=None, help="Training epochs (default: the space's protocol).")
@set_option("batch_size=64", "training config")
@click.option("--seeds", default="0", show_default=True, callback=_seed_list,
              help="Seeds to train each architecture with: 0,1,2 or 0-2.")
@click.option("--trial", "trials", multiple=True, metavar="ID",
              help="Search folder SOURCE: train this trial's genotype (repeatable).")
@click.option("--top", type=int, default=1, show_default=True,
              help="Search folder SOURCE without --trial: the best N trials' distinct genotypes.")
@click.option("--name", default=None, help="Name of the evaluation run folder [default: train-<date>-<time>].")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Parent of the run folder [default: <search folder>/evaluations, else raynas_results].")
@click.option("--cpus-per-trial", type=float, default=1.0, show_default=True)
@click.option("--gpus-per-trial", type=float, default=0.0, show_default=True)
@click.option("--max-failures", type=int, default=0, show_default=True,
              help="Retry a trial whose process died this many times, from its last checkpoint.")
@click.option("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all).")
@click.option("--address", default=None, help="Join this Ray cluster (host:port or 'auto').")
@click.option("--json", "as_json", is_flag=True, help="Print the evaluations table as JSON at the end.")
@friendly_errors
def train(sources: tuple[str, ...], space: str | None, dataset: str | None, config_path: str | None,
          epochs: int | None, overrides: tuple[str, ...], seeds: list[int], trials: tuple[str, ...], top: int,
          name: str | None, out: str | None, cpus_per_trial: float, gpus_per_trial: float, max_failures: int,
          num_cpus: int | None, address: str | None, as_json: bool) -> None:
    """Train derived architectures from scratch: every SOURCE's genotypes with every seed, one Ray Tune
    trial each.

    A SOURCE is a genotype (a DARTS Genotype(...) or an NB201 arch string), a text file of genotypes (one
    per line), or a search experiment folder (its best trial's genotype; --trial ID or --top N for
    others). Settings follow the space's evaluation protocol (DARTS spaces: C=36, 20 cells, auxiliary head,
    drop-path, cutout of the data set, cosine SGD; NB201: C=16, N=5) unless --config, --epochs or --set
    (e.g. --set channels=16 --set batch_size=64) change them.

    Results: the evaluations table of the run folder (one row per architecture and seed: params, FLOPs,
    test accuracy per epoch and final), also listed by raynas results <search folder> --table evaluations.
    Every epoch is checkpointed; an interrupted run goes on with raynas resume <run folder>.
    """
    from raynas.evaluation import plan_evaluation, run_evaluation

    prepared = plan_evaluation(sources, space=space, dataset=dataset, config_path=config_path, overrides=overrides,
                               epochs=epochs, seeds=seeds, trials=trials, top=top, name=name, out=out,
                               cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                               max_failures=max_failures, address=address, num_cpus=num_cpus)
    outcome = run_evaluation(prepared, echo=click.echo)
    _finish_evaluation(outcome, as_json)


def _finish_evaluation(outcome: Any, as_json: bool) -> None:
    """Print an evaluation run's summary (or its table as JSON); exit code 1 when a trial failed."""
    from raynas.evaluation import evaluation_summary
    from raynas.results import format_table, load_table

    if as_json:
        click.echo(format_table(load_table(str(outcome.directory), "evaluations"), "json"))
    else:
        for line in evaluation_summary(outcome):
            click.echo(line)
    if outcome.num_errors and not outcome.already_finished:
        sys.exit(1)


@main.command(short_help="Export a trained network as a .pt2 program and as ONNX.")
@click.argument("source")
@click.option("--trial", "trial_id", default=None, metavar="ID",
              help="Evaluation trial to export [default: the finished one with the best test accuracy].")
@click.option("--format", "formats", type=CommaChoice(EXPORT_FORMATS), default="pt2,onnx", show_default=True,
              help="Comma-separated: pt2 (torch.export program with its weights), onnx.")
@click.option("--opset", type=int, default=18, show_default=True, help="ONNX opset.")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Folder for the files [default: <run folder>/exported/<trial>, or ./exported for a genotype].")
@click.option("--name", default="network", show_default=True, help="File name stem.")
@click.option("--space", default=None, help="Genotype SOURCE: its search space (default: guessed from the text).")
@click.option("--channels", type=int, default=None, help="Genotype SOURCE: initial channels (default: protocol).")
@click.option("--layers", type=int, default=None, help="Genotype SOURCE: cells (darts) or cells per stage (nb201).")
@click.option("--classes", "num_classes", type=int, default=10, show_default=True, help="Genotype SOURCE.")
@click.option("--input-shape", default="3,32,32", show_default=True, help="Genotype SOURCE: C,H,W of one input.")
@click.option("--seed", type=int, default=0, show_default=True, help="Genotype SOURCE: seed of the weights.")
@friendly_errors
def export(source: str, trial_id: str | None, formats: tuple[str, ...], opset: int, out_dir: str | None, name: str,
           space: str | None, channels: int | None, layers: int | None, num_classes: int, input_shape: str,
           seed: int) -> None:
    """Export a trained architecture as a standalone PyTorch file (.pt2, loadable with
    torch.export.load(path).module() without raynas) and as ONNX, then check both against the network.

    SOURCE is an evaluation run folder of raynas train (or the search folder whose evaluations/ holds runs):
    the trained weights of --trial's last checkpoint. A genotype text instead exports a freshly initialised
    network of that architecture (for size and latency checks). Prints each file and the largest output
    difference between the re-imported file and the network on a random batch.
    """
    from pathlib import Path

    import torch

    from raynas.config.limits import (MAX_CHANNELS, MAX_CLASSES, MAX_IMAGE_SIZE, MAX_LAYERS, MAX_SEED,
                                      check_int)
    from raynas.errors import ConfigError
    from raynas.export import check_export_options, export_network, verify_export

    from raynas.evaluation.plan import path_kind

    fmts = check_export_options(list(formats), opset, name)
    shape: tuple[int, ...]  # (channels, height, width) of one input
    if path_kind(source) == "dir":  # not Path.is_dir: it raises for a genotype longer than a file name
        from raynas.evaluation import load_trained_network

        trained = load_trained_network(source, trial_id)
        model, shape = trained.model, trained.input_shape
        target = Path(out_dir) if out_dir else trained.run_dir / "exported" / trained.trial_id
        click.echo(f"exporting trial {trained.trial_id} of {trained.run_dir} (test_acc {trained.test_acc:.4f}): "
                   f"{trained.genotype}")
    else:
        from raynas.runtime import seed_everything
        from raynas.spaces import get_space, guess_space

        if trial_id is not None:
            raise ConfigError("--trial: only for an evaluation run folder SOURCE")
        try:
            shape = tuple(int(v) for v in input_shape.split(","))
        except ValueError:
            shape = ()
        if len(shape) != 3 or min(shape) < 1 or shape[0] > MAX_CHANNELS or max(shape[1:]) > MAX_IMAGE_SIZE:
            raise ConfigError(f"--input-shape = {input_shape!r}: give channels,height,width, e.g. 3,32,32 "
                              f"(channels <= {MAX_CHANNELS}, sides <= {MAX_IMAGE_SIZE})")
        for option, value, low, high in (("--channels", channels, 1, MAX_CHANNELS), ("--layers", layers, 1, MAX_LAYERS),
                                         ("--classes", num_classes, 1, MAX_CLASSES), ("--seed", seed, 0, MAX_SEED)):
            check_int(option, value, low, high)
        sp = get_space(space or guess_space(source))
        defaults = sp.default_network_args()
        seed_everything(seed)
        model = sp.build_network(sp.parse_genotype(source), channels=channels or defaults["channels"],
                                 layers=layers or defaults["layers"], num_classes=num_classes, in_channels=shape[0],
                                 auxiliary=False, drop_path_prob=0.0).eval()
        target = Path(out_dir or "exported")
        click.echo(f"exporting an untrained {sp.name} network (seed {seed}): {source}")
    from raynas.output_paths import check_output_parent

    check_output_parent("--out", target)
    example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(seed))
    paths = export_network(model, example, target, formats=fmts, opset=opset, name=name)
    check = torch.randn(3, *shape, generator=torch.Generator().manual_seed(seed + 1))  # another batch size
    for fmt, diff in verify_export(paths, model, check).items():
        click.echo(f"{paths[fmt]}  ({fmt}: re-imported outputs within {diff:.2g} of the network's)")


@main.group(cls=OrderedGroup, short_help="The cell autoencoder E2NAS searches in: pretrain it.")
def e2nas() -> None:
    """E2NAS: the cell autoencoder whose latent space E2NAS searches in."""


@e2nas.command("pretrain", short_help="Train the cell autoencoder over a space's cells; save it.")
@click.argument("space")
@click.option("--out", "-o", "out_path", default=None, help="Where to save the autoencoder [default: SPACE-vgae.pt].")
@click.option("--epochs", type=int, default=20, show_default=True, help="Training epochs.")
@click.option("--samples", type=int, default=None,
              help="Cells drawn to train on, duplicates dropped (default: every NB201 cell; 20,000 draws in "
                   "other spaces).")
@click.option("--holdout", type=float, default=0.1, show_default=True,
              help="Share of the cells kept out of training to measure reconstruction.")
@click.option("--latent", type=int, default=30, show_default=True, help="Latent size per cell type.")
@click.option("--hidden", type=int, default=64, show_default=True, help="Hidden size of encoder and decoder.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--kl-weight", type=float, default=0.005, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds cells, split and training.")
@click.option("--threads", type=int, default=1, show_default=True, help="torch threads.")
@click.option("--json", "as_json", is_flag=True, help="Print the final metrics as JSON.")
@friendly_errors
def e2nas_pretrain(space: str, out_path: str | None, epochs: int, samples: int | None, holdout: float, latent: int,
                   hidden: int, batch_size: int, lr: float, kl_weight: float, seed: int, threads: int,
                   as_json: bool) -> None:
    """Train the variational graph autoencoder over SPACE's cells and save it.

    Prints one line per epoch, then the reconstruction accuracy of the held-out cells (exact cells and
    edges) and the validity of cells decoded from random latents. The same seed gives the same file's
    weights on the CPU. The encoder and decoder are our reconstruction [recon] (docs/methods.md, E2NAS).
    """
    from pathlib import Path

    import torch

    from raynas.e2nas import pretrain, save
    from raynas.spaces import get_space

    from raynas.config.limits import (MAX_BATCH_SIZE, MAX_CHANNELS, MAX_EPOCHS, MAX_SAMPLES, MAX_SEED, MAX_WORKERS,
                                      check_int)
    from raynas.errors import ConfigError

    get_space(space)  # an unknown space is a usage error before anything runs
    for name, value, low, high in (("--epochs", epochs, 0, MAX_EPOCHS), ("--samples", samples, 1, MAX_SAMPLES),
                                   ("--latent", latent, 1, MAX_CHANNELS), ("--hidden", hidden, 1, MAX_CHANNELS),
                                   ("--batch-size", batch_size, 1, MAX_BATCH_SIZE),
                                   ("--threads", threads, 1, MAX_WORKERS), ("--seed", seed, 0, MAX_SEED)):
        check_int(name, value, low, high)
    if not 0 <= holdout < 1:
        raise ConfigError(f"--holdout = {holdout}: must be a share in [0, 1)")
    if not lr > 0:
        raise ConfigError(f"--lr = {lr}: must be > 0")
    torch.set_num_threads(threads)
    target = Path(out_path or f"{space}-vgae.pt")
    if target.is_dir():
        raise ConfigError(f"--out = {str(target)!r}: a folder; give a file path")
    from raynas.output_paths import check_output_parent

    check_output_parent("--out", target.parent, str(target))  # before the training, not when saving its result

    def progress(row: dict[str, float]) -> None:
        click.echo(f"epoch {int(row['epoch'])}/{epochs}: loss {row['loss']:.4f} (reconstruction "
                   f"{row['recon']:.4f}, KL {row['kl']:.3f}) {row['seconds']:.1f}s")

    click.echo(f"raynas: pretraining the {space} cell autoencoder ({epochs} epochs, latent {latent}, "
               f"hidden {hidden}, seed {seed})")
    model, metrics = pretrain(space, samples=samples, epochs=epochs, batch_size=batch_size, lr=lr, latent=latent,
                              hidden=hidden, kl_weight=kl_weight, holdout=holdout, seed=seed, progress=progress)
    save(model, target)
    if as_json:
        click.echo(json.dumps({**metrics, "path": str(target)}, indent=2))
        return
    click.echo(f"held-out cells reconstructed: {metrics['holdout_recon_acc']:.4f} "
               f"(edges {metrics['holdout_edge_acc']:.4f}, {int(metrics['holdout_cells'])} cells); training cells "
               f"{metrics['train_recon_acc']:.4f} of {int(metrics['train_cells'])}")
    click.echo(f"decoded random latents: {metrics['prior_validity']:.4f} valid, {metrics['prior_unique']:.4f} distinct")
    click.echo(f"saved: {target} ({metrics['seconds']:.1f}s of training)")


PROTOCOL_OPTION = click.option("--protocol", "protocol_path", default=None, type=click.Path(dir_okay=False),
                               help="Training protocol as YAML [default: the shipped one, "
                                    "raynas/benchmark/protocol.yaml].")


def _bench_protocol(path: str | None) -> dict[str, Any]:
    """The benchmark protocol of ``--protocol`` (checked), or the shipped one."""
    from raynas.benchmark.protocol import check_protocol, shipped_protocol
    from raynas.config.loader import read_config_file

    return check_protocol(read_config_file(path)) if path else shipped_protocol()


@main.group(cls=OrderedGroup, short_help="The NB201 ground truth: build, look up, merge, describe.")
def bench() -> None:
    """The NB201 ground truth on the embedded data: build, look up, describe (docs/benchmark.md)."""


@bench.command("build", short_help="Train NB201's unique cells under the benchmark protocol.")
@click.option("--cells", type=int, default=None,
              help="Train the first N unique cells of the build order (a seeded random order) [default: all 6,466].")
@click.option("--seeds", default="0", show_default=True, callback=_seed_list, help="Seeds: 0,1,2 or 0-2.")
@click.option("--name", default=None, help="Name of the build folder [default: bench-<date>-<time>].")
@click.option("--out", default="raynas_results", show_default=True, type=click.Path(file_okay=False),
              help="Parent of the build folder.")
@PROTOCOL_OPTION
@click.option("--base", "bases", multiple=True, type=click.Path(),
              help="Benchmark tables whose (cell, seed) pairs are not trained again (repeatable) "
                   "[default: the shipped table].")
@click.option("--cells-per-trial", type=int, default=16, show_default=True,
              help="Cells one Tune trial trains, one after the other (each is checkpointed).")
@click.option("--cpus-per-trial", type=float, default=1.0, show_default=True)
@click.option("--gpus-per-trial", type=float, default=0.0, show_default=True,
              help="GPUs of each trial; its cells train there (fractions share one GPU: 0.25 runs 4 trials on it).")
@click.option("--max-failures", type=int, default=2, show_default=True,
              help="Retry a trial whose process died this many times, after its last finished cell.")
@click.option("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all).")
@click.option("--address", default=None, help="Join this Ray cluster (host:port or 'auto').")
@friendly_errors
def bench_build(cells: int | None, seeds: list[int], name: str | None, out: str, protocol_path: str | None,
                bases: tuple[str, ...], cells_per_trial: int, cpus_per_trial: float, gpus_per_trial: float,
                max_failures: int, num_cpus: int | None, address: str | None) -> None:
    """Train NB201's unique cells from scratch under the benchmark protocol, as a Ray Tune population.

    Each trial trains --cells-per-trial cells with one seed and checkpoints after each; pairs the base
    tables hold are skipped. Progress: one line per cell with the rate and an ETA. The build folder's
    benchmark.parquet holds the base rows plus the new ones; an interrupted build goes on with
    raynas resume <build folder>.
    """
    import datetime

    from raynas.benchmark.build import prepare_build, run_build
    from raynas.config.schema import RayConfig

    protocol = _bench_protocol(protocol_path)
    name = name or datetime.datetime.now().strftime("bench-%Y%m%d-%H%M%S")
    plan, directory = prepare_build(name=name, out=out, protocol=protocol, seeds=seeds, cells=cells,
                                    cells_per_trial=cells_per_trial, cpus_per_trial=cpus_per_trial,
                                    gpus_per_trial=gpus_per_trial, max_failures=max_failures,
                                    base=list(bases) or None, ray=RayConfig(address=address, num_cpus=num_cpus))
    _finish_build(run_build(plan, directory, echo=click.echo))


def _finish_build(outcome: Any) -> None:
    """Print a build's summary; exit code 1 when a trial failed, 130 when it was interrupted."""
    from raynas.benchmark.build import build_summary

    for line in build_summary(outcome):
        click.echo(line)
    if outcome.num_errors:
        sys.exit(1)
    if outcome.pairs_left:
        sys.exit(INTERRUPTED)


@bench.command("lookup", short_help="Ground truth of NB201 arch strings (trained on demand).")
@click.argument("archs", nargs=-1, required=True, metavar="ARCH...")
@click.option("--table", "tables", multiple=True, type=click.Path(),
              help="Benchmark table(s) or build folder(s) to look in (repeatable) [default: the shipped table].")
@click.option("--cache", "cache_dir", default=None, type=click.Path(file_okay=False),
              help="Folder of on-demand trainings [default: $RAYNAS_BENCHMARK_CACHE or ~/.cache/raynas/benchmark].")
@click.option("--no-train", is_flag=True, help="Fail instead of training a cell the table lacks.")
@PROTOCOL_OPTION
@click.option("--official", default=None, type=click.Path(),
              help="Look up in an official NAS-Bench-201 .pth or NATS-Bench topology folder instead "
                   "(docs/benchmark.md); --cache is then where its extraction is kept.")
@click.option("--data", "data_name", default="cifar10", show_default=True,
              type=click.Choice(["cifar10", "cifar100", "imagenet16"]), help="With --official: the data set.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def bench_lookup(archs: tuple[str, ...], tables: tuple[str, ...], cache_dir: str | None, no_train: bool,
                 protocol_path: str | None, official: str | None, data_name: str, as_json: bool) -> None:
    """Ground truth of NB201 arch strings: test accuracy (mean over seeds), percentile, regret.

    A cell the table lacks is trained on demand under the same protocol (seconds) and cached. With
    --official: the file's 200-epoch test accuracy of each arch string on --data.
    """
    from dataclasses import asdict

    from raynas.benchmark.lookup import GroundTruth, cell_of

    for arch in archs:  # a bad arch string is reported before any table is read
        cell_of(arch)
    if official is not None:
        from raynas.benchmark.official import OfficialGroundTruth

        scores = OfficialGroundTruth.open(official, data_name, cache_dir).scores(list(archs))
    else:
        scores = GroundTruth(list(tables) or None, cache_dir=cache_dir, train_missing=not no_train,
                             protocol=_bench_protocol(protocol_path)).scores(list(archs))
    if as_json:
        click.echo(json.dumps([asdict(score) for score in scores], indent=2))
        return
    for score in scores:
        how = ("official file" if official is not None else "trained now" if score.trained_now
               else f"seeds {','.join(map(str, score.seeds))}")
        click.echo(f"{score.arch}  cell {score.cell_id}  test_acc {score.test_acc:.4f}  "
                   f"percentile {score.percentile:.1f}  regret {score.regret:.4f}  ({how})")


@bench.command("merge", short_help="Merge benchmark tables and build folders into one table.")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True), metavar="SOURCE...")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The merged table (written atomically; may be one of the SOURCEs).")
@PROTOCOL_OPTION
@friendly_errors
def bench_merge(sources: tuple[str, ...], out_path: str, protocol_path: str | None) -> None:
    """Merge benchmark tables and build folders (finished or still running: their parts) into one table of
    the protocol's rows, one per (cell, seed); e.g. to ship a build's rows with raynas."""
    from raynas.benchmark.protocol import protocol_hash
    from raynas.benchmark.table import read_rows, write_table

    digest = protocol_hash(_bench_protocol(protocol_path))
    table = read_rows(list(sources), digest)
    write_table(table, out_path)
    cells = len(set(table["cell_id"].to_pylist()))
    click.echo(f"raynas: {table.num_rows} row(s) over {cells} unique cell(s) of protocol {digest} -> {out_path}")


@bench.command("info", short_help="What a benchmark table holds: cells, seeds, best cell.")
@click.option("--table", "tables", multiple=True, type=click.Path(),
              help="Benchmark table(s) or build folder(s) [default: the shipped table].")
@PROTOCOL_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def bench_info(tables: tuple[str, ...], protocol_path: str | None, as_json: bool) -> None:
    """What a benchmark table holds: cells, seeds, protocol, accuracy range and the best cell."""
    from raynas.benchmark.summary import table_info

    info = table_info(list(tables) or None, _bench_protocol(protocol_path))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        click.echo(f"{key:>18}: {value}")


if __name__ == "__main__":  # pragma: no cover
    main(prog_name="raynas")  # messages say 'raynas ...', not 'python -m raynas.cli ...'
