"""The ``errand`` command line, run as a real process against real databases."""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET_KEY, Server, free_port

ERRAND = str(Path(sys.executable).parent / "errand")
KEY_LINE = re.compile(r"^(ogk|ar)_(live|test)_[A-Za-z0-9_-]{32,}$")


async def run_cli(*args: str, env: dict[str, str], input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run in a thread: the server under test shares this event loop and must keep serving."""
    return await asyncio.to_thread(subprocess.run, [ERRAND, *args], env={**os.environ, **env}, capture_output=True, text=True,
                          input=input, timeout=120)


def server_env(server: Server) -> dict[str, str]:
    return {"ERRAND_DATABASE_URL": server.settings.effective_database_url, "ERRAND_SECRET_KEY": SECRET_KEY,
            "ERRAND_DATA_DIR": str(server.settings.data_dir)}


async def test_created_key_is_printed_alone_on_the_last_line_and_works(server: Server) -> None:
    result = await run_cli("create-api-key", "--org", "CLI Org", "--env", "test", "--scenarios", "restaurant,hotel",
                     "--prefix", "ar", "--name", "ci", env=server_env(server))
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert KEY_LINE.match(key)
    assert key.startswith("ar_test_")
    async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}) as client:
        response = await client.get("/api/v1/policies")
    assert response.status_code == 200


async def test_revoked_key_stops_working_within_a_second(server: Server) -> None:
    created = await run_cli("create-api-key", "--org", "CLI Revoke Org", "--json", env=server_env(server))
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    assert issued["key"].startswith("ogk_live_") and issued["prefix"] == issued["key"][:12]
    async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {issued['key']}"}) as c:
        assert (await c.get("/api/v1/policies")).status_code == 200
        revoked = await run_cli("revoke-api-key", issued["id"], "--yes", env=server_env(server))
        assert revoked.returncode == 0, revoked.stderr
        # The server is another process: its key cache (ERRAND_AUTH_CACHE_SECONDS, ≤ 1 s) bounds
        # how long it may still accept the key. Poll against twice that bound.
        deadline = time.monotonic() + 2.0
        while (response := await c.get("/api/v1/policies")).status_code != 401 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


async def test_revoke_without_confirmation_changes_nothing(server: Server) -> None:
    created = await run_cli("create-api-key", "--org", "CLI Keep Org", env=server_env(server))
    key = created.stdout.strip().splitlines()[-1]
    refused = await run_cli("revoke-api-key", key[:12], env=server_env(server), input="n\n")
    assert refused.returncode == 1
    again = await run_cli("revoke-api-key", key[:12], "--yes", env=server_env(server))
    assert again.returncode == 0, again.stderr


async def test_invalid_scenario_is_refused_with_a_message(server: Server) -> None:
    result = await run_cli("create-api-key", "--org", "CLI Bad", "--scenarios", "restaurant,spaceflight",
                     env=server_env(server))
    assert result.returncode == 1
    assert "scenarios" in result.stderr


def test_serve_migrates_mints_demo_keys_once_and_books(tmp_path: Path, server: Server) -> None:
    if server.backend != "sqlite":
        pytest.skip("the embedded default is SQLite; the PostgreSQL server is exercised by every other test")
    port = free_port()
    env = fresh_env(tmp_path)
    output = serve_until_healthy(tmp_path, port)
    keys = re.findall(r"(ar_(?:live|test)_[A-Za-z0-9_-]{32,})", output)
    assert len(keys) == 3, output
    assert (tmp_path / "var" / "errand.db").exists()
    assert (tmp_path / "var" / "secret.key").exists()
    # A second start finds the organization and prints no keys.
    proc = subprocess.Popen([ERRAND, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                live = httpx.post(f"http://127.0.0.1:{port}/api/v1/agent/restaurant/book",
                                  headers={"Authorization": f"Bearer {keys[0]}"},
                                  json={"restaurantName": "Katz's Delicatessen", "city": "New York",
                                        "partySize": 2, "datetime": "2027-06-01T13:00:00",
                                        "customer": {"name": "Demo"}})
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "errand serve did not restart"
                time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert live.status_code == 201, live.text
    assert not re.findall(r"ar_(?:live|test)_[A-Za-z0-9_-]{32,}", output)


def fresh_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The embedded default (SQLite under a new data dir), as on a first start."""
    env = {k: v for k, v in os.environ.items() if k not in ("ERRAND_DATABASE_URL", "ERRAND_PORT", "ERRAND_RUNNER")}
    return env | {"ERRAND_DATA_DIR": str(tmp_path / "var")} | extra


def test_serve_on_a_busy_port_says_so_and_keeps_the_demo_keys_for_the_next_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        by_option = subprocess.run([ERRAND, "serve", "--port", str(port)], env=fresh_env(tmp_path), cwd=tmp_path,
                                   capture_output=True, text=True, timeout=120)
        by_environment = subprocess.run([ERRAND, "serve"], env=fresh_env(tmp_path, ERRAND_PORT=str(port)),
                                        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    for result in (by_option, by_environment):
        assert result.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}: it is already in use" in result.stderr
        assert not re.search(r"ar_(live|test)_", result.stdout + result.stderr)
    # Nothing was minted: the demo organization does not exist, so the next start creates it and shows its keys.
    assert not (tmp_path / "var" / "errand.db").exists()
    output = serve_until_healthy(tmp_path, free_port())
    assert len(re.findall(r"ar_(?:live|test)_[A-Za-z0-9_-]{32,}", output)) == 3, output


def test_serve_without_a_worker_on_sqlite_is_refused_with_what_to_run_instead(tmp_path: Path) -> None:
    result = subprocess.run([ERRAND, "serve", "--no-worker", "--port", str(free_port())], env=fresh_env(tmp_path),
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--no-worker on SQLite would accept jobs that nothing ever runs" in result.stderr
    assert "run `errand serve`" in result.stderr and "ERRAND_RUNNER=procrastinate" in result.stderr
    assert "`errand worker`" in result.stderr
    assert not (tmp_path / "var" / "errand.db").exists()


def test_make_run_serves_on_the_port_it_is_given() -> None:
    root = Path(__file__).parent.parent
    given = subprocess.run(["make", "-n", "run", "PORT=3100"], cwd=root, capture_output=True, text=True, timeout=60)
    default = subprocess.run(["make", "-n", "run"], cwd=root, capture_output=True, text=True, timeout=60,
                             env={k: v for k, v in os.environ.items() if k != "PORT"})
    assert ".venv/bin/errand serve --port 3100" in given.stdout.splitlines()
    # Without PORT, `errand serve` reads ERRAND_PORT (else 3000) itself.
    assert ".venv/bin/errand serve " in default.stdout.splitlines()


def serve_until_healthy(cwd: Path, port: int) -> str:
    """Run `errand serve --port` until /healthz answers, stop it with SIGINT; its output."""
    proc = subprocess.Popen([ERRAND, "serve", "--port", str(port)], env=fresh_env(cwd), cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "errand serve did not start"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
