"""Ray's and Tune's own logging goes to <experiment>/logs/tune.log; the console gets one line per distinct
warning or error that raynas does not report itself (real loggers, a real file)."""

from __future__ import annotations

import importlib
import io
import logging
import warnings

from raynas.tune.logs import LOG_FILE, MAX_CHARS, ConsoleSummary, ray_logs_to

METRICS = {f"alpha_{i}": 0.1 * i for i in range(400)}  # the size of a metric dump Tune puts in its errors


def test_ray_logging_goes_to_the_file_and_comes_back_after(tmp_path, capsys):
    importlib.import_module("ray")  # Ray's import installs its console handler on the "ray" logger
    ray_logger = logging.getLogger("ray")
    before = list(ray_logger.handlers)
    with ray_logs_to(tmp_path) as path:
        assert path == tmp_path / LOG_FILE
        logging.getLogger("ray.tune.schedulers.pbt").info("[PopulationBasedTraining] [Exploit] Cloning trial a")
        try:
            raise FileNotFoundError("Path not found: checkpoint_000002")
        except FileNotFoundError:
            logging.getLogger("ray.tune.execution.tune_controller").exception(
                "Trial t1: Error handling checkpoint TrainingResult(metrics=%s)", METRICS)
        warnings.warn("a deprecated Ray option", DeprecationWarning, stacklevel=1)
    text = path.read_text()
    assert "[Exploit] Cloning trial a" in text  # INFO lines are kept in the file
    assert "Traceback" in text and "FileNotFoundError: Path not found" in text and "alpha_399" in text
    assert "a deprecated Ray option" in text
    err = capsys.readouterr().err.splitlines()
    # one line each for the error and the warning, none for the INFO line; no traceback, no metric dump
    assert len(err) == 2, err
    assert err[0].startswith("raynas: Ray error (ray.tune.execution.tune_controller): Trial t1: Error handling "
                             "checkpoint") and err[0].endswith(f"(details: {path})")
    shown = err[0].removeprefix("raynas: Ray error (ray.tune.execution.tune_controller): ")
    assert "alpha_399" not in shown and len(shown.removesuffix(f" (details: {path})")) <= MAX_CHARS
    assert "a deprecated Ray option" in err[1]
    assert ray_logger.handlers == before  # Ray's own console handler is back


def test_routine_and_repeated_messages_stay_off_the_console(tmp_path):
    stream = io.StringIO()
    summary = ConsoleSummary(tmp_path / "tune.log", stream=stream)
    logger = logging.getLogger("ray.tune.test_console_summary")
    logger.addHandler(summary)
    logger.propagate = False
    try:
        logger.warning("Stop signal received (e.g. via SIGINT/Ctrl+C), ending Ray Tune run.")
        logger.warning('Experiment has been interrupted, but the most recent state was saved.\n'
                       'Resume experiment with: Tuner.restore(path="/x", trainable=...)')
        logger.error("Trials did not complete: [t1, t2]")
        for _ in range(3):  # Tune repeats this one every minute
            logger.warning("Ignore this message if the cluster is autoscaling. No trial is running and no new "
                           "trial has been started within the last 60 seconds.")
        logger.info("Total run time: 12.3 seconds")
    finally:
        logger.removeHandler(summary)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "Ignore this message if the cluster is autoscaling" in lines[0], lines
    assert "Tuner.restore" not in stream.getvalue()
