"""The ``errand`` command line, run as a real process against real databases."""

import asyncio
import json
import os
import re
import signal
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


async def test_revoked_key_stops_working_at_once(server: Server) -> None:
    created = await run_cli("create-api-key", "--org", "CLI Revoke Org", "--json", env=server_env(server))
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    assert issued["key"].startswith("ogk_live_") and issued["prefix"] == issued["key"][:12]
    async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {issued['key']}"}) as c:
        assert (await c.get("/api/v1/policies")).status_code == 200
        revoked = await run_cli("revoke-api-key", issued["id"], "--yes", env=server_env(server))
        assert revoked.returncode == 0, revoked.stderr
        response = await c.get("/api/v1/policies")
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
    env = {**os.environ, "ERRAND_DATA_DIR": str(tmp_path / "var")}
    env.pop("ERRAND_DATABASE_URL", None)
    proc = subprocess.Popen([ERRAND, "serve", "--port", str(port)], env=env, cwd=tmp_path,
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
        output = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
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
