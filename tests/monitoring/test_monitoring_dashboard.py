"""ray.dashboard: off by default, on loopback when on, its URL printed and served (an HTTP GET answers 200).

The slow test runs the real CLI with ray.dashboard on and holds both trials after epoch 1 (raynas.tune.hold),
so the dashboard is asked while the search runs, whatever the machine's speed. The default tier checks the
settings, the Ray session rules and the refusals without starting a Ray of its own.
"""

from __future__ import annotations

import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from cli_helpers import LOOPBACK, ROOT, BackgroundRun, Hold, raynas  # noqa: E402

from raynas.config import RayConfig, config_from_dict  # noqa: E402
from raynas.errors import ConfigError  # noqa: E402
from raynas.ray_dashboard import init_kwargs, port_taken, url_line  # noqa: E402
from raynas.ray_session import RaySettings, check_running, differences, settings_for  # noqa: E402

SMOKE = ROOT / "raynas" / "configs" / "smoke" / "nb201.yaml"
URL_LINE = re.compile(r"^raynas: Ray dashboard: (http://127\.0\.0\.1:(\d+)) \(its API asks for the Ray token: "
                      r"the file (.+)\)$", re.MULTILINE)


def test_off_by_default_and_on_loopback_when_on() -> None:
    ray = config_from_dict({}).ray
    assert (ray.dashboard, ray.dashboard_host, ray.dashboard_port) == (False, "127.0.0.1", None)
    assert init_kwargs(ray) == {"include_dashboard": False}
    assert init_kwargs(RayConfig(dashboard=True)) == {"include_dashboard": True, "dashboard_host": "127.0.0.1"}
    assert init_kwargs(RayConfig(dashboard=True, dashboard_port=8300)) == \
        {"include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": 8300}


@pytest.mark.parametrize("ray, message", [
    ({"dashboard_host": "my laptop"}, "ray.dashboard_host = 'my laptop': must be an IP address of this machine"),
    ({"dashboard_port": 0}, "ray.dashboard_port = 0: must be >= 1 and <= 65535"),
    ({"dashboard": "yes please"}, "ray.dashboard = 'yes please': must be true or false"),
])
def test_bad_settings_are_one_line(ray: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"ray": ray})
    assert str(info.value).startswith(message)


def test_the_url_line_says_where_the_token_is(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    assert url_line("127.0.0.1:8265") == ("raynas: Ray dashboard: http://127.0.0.1:8265 (its API asks for the Ray "
                                          f"token: the file {tmp_path / 'token'})")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert url_line("127.0.0.1:8265") == "raynas: Ray dashboard: http://127.0.0.1:8265"
    assert url_line("") is None


def test_a_taken_port_is_one_line() -> None:
    refusal = ValueError("Failed to bind to 127.0.0.1:8300 because it's already occupied. You can use ...")
    error = port_taken(RayConfig(dashboard=True, dashboard_port=8300), refusal)
    assert str(error) == ("ray.dashboard_port = 8300: the port is taken on 127.0.0.1; choose a free one, or leave it "
                          "null (8265, or the next free one)")
    assert port_taken(RayConfig(dashboard=True), refusal) is None  # Ray itself moves on to a free port
    assert port_taken(RayConfig(dashboard=True, dashboard_port=8300), ValueError("something else")) is None


def test_a_run_that_wants_the_dashboard_restarts_a_ray_raynas_started_without_one() -> None:
    env = {"LD_PRELOAD": "/lib/libmimalloc.so"}
    without = settings_for(RayConfig(), env)
    wanted = settings_for(RayConfig(dashboard=True), env)
    assert without.dashboard is None and wanted.dashboard == ("127.0.0.1", None)
    assert differences(without, RayConfig(dashboard=True), wanted) == ["ray.dashboard on 127.0.0.1 (running: off)"]
    assert differences(wanted, RayConfig(), without) == []  # one it does not need does no harm
    on_port = settings_for(RayConfig(dashboard=True, dashboard_port=8300), env)
    assert differences(wanted, RayConfig(dashboard=True, dashboard_port=8300), on_port) == \
        ["ray.dashboard on 127.0.0.1:8300 (running: on 127.0.0.1)"]
    joined = settings_for(RayConfig(address="127.0.0.1:6379", dashboard=True), env)
    assert joined == RaySettings("127.0.0.1:6379", None, "mimalloc", (("LD_PRELOAD", "/lib/libmimalloc.so"),), None)


def test_a_ray_without_a_dashboard_that_raynas_did_not_start_is_refused(ray_local, tmp_path) -> None:
    check_running(RayConfig())  # the session's Ray (no dashboard) serves a run that does not ask for one
    with pytest.raises(ConfigError, match=r"^ray.dashboard = true: this process already runs a Ray it did not start "
                                          r"through raynas \(ray.init\), without a dashboard; raynas runs on it as it "
                                          r"is: leave the setting unset \(null\), or call ray.shutdown\(\) first$"):
        check_running(RayConfig(dashboard=True))


def test_the_cli_refuses_a_bad_host_before_writing(tmp_path) -> None:
    run = raynas("search", str(SMOKE), "--out", str(tmp_path), "--set", "ray.dashboard=true",
                 "--set", "ray.dashboard_host=example.org")
    assert run.returncode == 2 and list(tmp_path.iterdir()) == []
    assert run.stderr.strip().splitlines() == [
        "error: --set 'ray.dashboard_host=example.org': ray.dashboard_host = 'example.org': must be an IP address "
        "of this machine, e.g. 127.0.0.1 (loopback, the default) or 0.0.0.0 (every interface)"]


@pytest.mark.slow  # a real search with Ray's dashboard: about 40 s on a busy 2-core machine
def test_the_dashboard_is_served_on_loopback_while_the_search_runs(tmp_path) -> None:
    hold = Hold(tmp_path / "hold", 1)
    with BackgroundRun("search", str(SMOKE), "--out", str(tmp_path / "out"), "--set", "ray.num_cpus=2",
                       "--set", "ray.dashboard=true", hold=hold) as run:
        run.wait_until(lambda r: len(hold.held()) == 2)  # both trials wait after epoch 1: Ray is up and busy
        found = URL_LINE.search(run.stdout)
        assert found, run.stdout
        url, token_file = found.group(1), found.group(3)
        with urllib.request.urlopen(url + "/", timeout=30) as page:
            assert page.status == 200
            assert b"Ray Dashboard" in page.read()
        with pytest.raises(urllib.error.HTTPError) as refused:  # its API wants the token raynas turned on
            urllib.request.urlopen(url + "/api/version", timeout=30)
        assert refused.value.code == 401
        token = Path(token_file).read_text().strip()
        request = urllib.request.Request(url + "/api/version", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
        run.processes()
        assert run.listening and run.listening <= LOOPBACK, run.listening
        hold.release()
        assert run.wait(timeout=300) == 0, run.stderr[-3000:]
        assert run.stderr == ""
        assert run.stdout.count("raynas: Ray dashboard: ") == 1
