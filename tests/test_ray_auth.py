"""Token authentication of the Ray raynas starts (raynas.ray_auth): the private token file, and a real local
Ray on loopback that refuses drivers without the token and accepts one with it (raynas' own join path)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import psutil
import pytest

from raynas.errors import ConfigError
from raynas.ray_auth import enable_for_join, enable_for_local_ray, ensure_private_token

ROOT = Path(__file__).resolve().parents[1]
AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")

# raynas' local Ray, started as `raynas search` starts it; prints its GCS address, then waits for stdin.
HEAD = textwrap.dedent("""
    import sys
    import ray
    from raynas.config.schema import RayConfig
    from raynas.experiment import start_ray

    start_ray(RayConfig(num_cpus=1))
    print(ray.get_runtime_context().gcs_address, flush=True)
    sys.stdin.readline()
    ray.shutdown()
""")

# A second driver that runs one task on the Ray at argv[1]: through raynas' join path (`--address`) when
# argv[2] is "raynas", else with a bare ray.init.
CLIENT = textwrap.dedent("""
    import sys
    import ray
    if sys.argv[2] == "raynas":
        from raynas.config.schema import RayConfig
        from raynas.experiment import start_ray
        start_ray(RayConfig(address=sys.argv[1]))
    else:
        ray.init(address=sys.argv[1], log_to_driver=False)
    print("ran", ray.get(ray.remote(lambda: 6 * 7).remote(), timeout=120))
""")


def bare_env(**extra: str) -> dict[str, str]:
    """This session's environment without Ray's auth variables.

    The loopback switch stays on: without it a bare driver rewrites 127.0.0.1 to the machine's address."""
    env = {k: v for k, v in os.environ.items() if k not in AUTH_VARS}
    env.update({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1",
                **extra})
    return env


def test_a_missing_token_file_is_created_private(tmp_path):
    path = ensure_private_token(tmp_path / "ray" / "auth_token")
    token = path.read_text()
    assert len(token) == 64 and int(token, 16) >= 0  # 256 random bits, as Ray's own generator
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["auth_token"]  # no temporary file left behind
    assert ensure_private_token(path).read_text() == token  # kept, not replaced


def test_a_token_file_others_can_read_is_made_private(tmp_path):
    path = tmp_path / "auth_token"
    path.write_text("f" * 64)
    path.chmod(0o644)  # as Ray writes its default file with a 022 umask
    ensure_private_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "f" * 64


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text(""), "is empty"),
    (lambda p: p.mkdir(), "is not a regular file"),
])
def test_an_unusable_token_file_is_a_one_line_error(tmp_path, make, message):
    path = tmp_path / "auth_token"
    make(path)
    with pytest.raises(ConfigError) as err:
        ensure_private_token(path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown a file")
def test_a_token_file_of_another_user_is_refused(tmp_path):
    path = tmp_path / "auth_token"
    path.write_text("f" * 64)
    os.chown(path, 65534, 65534)
    with pytest.raises(ConfigError, match="belongs to another user"):
        ensure_private_token(path)


def test_an_explicit_disabled_mode_is_respected(monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "auth_token"))
    assert enable_for_local_ray() is None
    assert os.environ["RAY_AUTH_MODE"] == "disabled" and not (tmp_path / "auth_token").exists()


def test_joining_with_token_mode_and_no_token_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token there
    with pytest.raises(ConfigError, match="RAY_AUTH_MODE=token but no Ray token was found") as err:
        enable_for_join()
    assert "\n" not in str(err.value)


def test_local_ray_refuses_drivers_without_its_token(tmp_path):
    """raynas' local Ray turns token auth on with a private token file it creates; a driver with no token or
    a wrong one is refused by the GCS, one joining through raynas with the token file runs its task."""
    token = tmp_path / "home" / ".ray" / "auth_token"  # raynas' default place, in a home of the test's own
    home_env = bare_env(HOME=str(tmp_path / "home"))
    ray_temp = tempfile.mkdtemp(prefix="rn")  # short: Ray's socket paths must stay under 108 bytes
    head_log = tmp_path / "head.log"
    with open(head_log, "w") as log:
        head = subprocess.Popen([sys.executable, "-c", HEAD], cwd=ROOT, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=log, text=True,
                                env={**home_env, "RAYNAS_RAY_TEMP_DIR": ray_temp})
    started = [psutil.Process(head.pid)]  # a psutil handle knows its start time: a reused PID is not it
    try:
        address = head.stdout.readline().strip()  # printed once Ray is up
        started += started[0].children(recursive=True)
        assert address.startswith("127.0.0.1:"), head_log.read_text()[-3000:]
        assert stat.S_IMODE(token.stat().st_mode) == 0o600 and len(token.read_text()) == 64

        def client(env: dict[str, str], how: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-c", CLIENT, address, how], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=300)

        # Refused clients give up after 2 connection attempts instead of 20 (Ray's default, 1 s apart).
        quick = {"RAY_gcs_server_port_wait_time_s": "2"}
        no_token = client(bare_env(HOME=str(tmp_path), **quick), "bare")  # a home without a token file
        wrong = client(bare_env(HOME=str(tmp_path), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="0" * 64, **quick), "bare")
        for refused in (no_token, wrong):
            assert refused.returncode != 0 and "ran 42" not in refused.stdout
            assert "InvalidAuthToken" in refused.stderr, refused.stderr[-3000:]
        # raynas' join path (`--address`): no RAY_AUTH_MODE set, the token in ~/.ray/auth_token.
        accepted = client(home_env, "raynas")
        assert accepted.returncode == 0 and "ran 42" in accepted.stdout, accepted.stderr[-3000:]
    finally:
        if head.poll() is None:
            head.communicate("\n", timeout=120)  # ray.shutdown() stops the Ray processes it started
        for proc in started:  # whatever a failed head left behind, by PID
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        shutil.rmtree(ray_temp, ignore_errors=True)
