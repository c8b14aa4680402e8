"""The ``errand`` command line, run as a real process against real databases."""

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_URL, SECRET_KEY, Server, create_pg_database, drop_pg_database, free_port

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
    with running(["serve"], fresh_env(cwd), cwd, port) as proc:
        pass
    return proc.communicate(timeout=30)[0]


BOOKING = {"restaurantName": "Balthazar", "city": "New York", "partySize": 2, "datetime": "2027-06-01T12:00:00",
           "customer": {"name": "CLI Tester", "email": "cli@example.com"}}


@contextmanager
def running(args: list[str], env: dict[str, str], cwd: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    """An `errand` command that serves on ``port``, until its /healthz answers; stopped with SIGINT afterwards."""
    proc = subprocess.Popen([ERRAND, *args, "--port", str(port)], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"errand {args[0]} did not start:\n{proc.communicate()[0]}")
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def output_so_far(proc: subprocess.Popen[str]) -> str:
    """What a running command printed up to its "listening" line (its first start's keys come before it)."""
    assert proc.stdout is not None
    lines = []
    while not lines or "listening on" not in lines[-1]:
        lines.append(proc.stdout.readline())
        assert lines[-1], "".join(lines)
    return "".join(lines)


def rows(db_file: Path, table: str) -> int:
    with closing(sqlite3.connect(db_file)) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_sandbox_served_alone_takes_the_bookings_of_a_serve_pointed_at_it(tmp_path: Path) -> None:
    sandbox_port, errand_port = free_port(), free_port()
    # ERRAND_PORT is Errand's, where the sandbox sends provider events.
    env = fresh_env(tmp_path, ERRAND_PORT=str(errand_port))
    with running(["sandbox"], env, tmp_path, sandbox_port) as sandbox:
        started = output_so_far(sandbox)
        assert f"Sandbox listening on http://127.0.0.1:{sandbox_port}/sandbox/" in started
        assert "sandbox.db" in started and f"127.0.0.1:{errand_port}/api/v1/provider-events" in started
        sandbox_url = f"http://127.0.0.1:{sandbox_port}/sandbox"
        front = httpx.get(f"http://127.0.0.1:{sandbox_port}/sandbox")
        assert front.status_code == 308 and front.headers["location"] == "/sandbox/"
        assert httpx.get(f"{sandbox_url}/").status_code == 200
        # Its JSON APIs are where the adapters expect them, and admit only Errand's credential.
        assert httpx.get(f"{sandbox_url}/api/sandbox-tables/restaurants").status_code == 401

        remote = env | {"ERRAND_SANDBOX_URL": sandbox_url}
        with running(["serve"], remote, tmp_path, errand_port) as errand:
            started = output_so_far(errand)
            assert f"sandbox: {sandbox_url}" in started
            test_key = re.search(r"test agent key: (ar_test_\S+)", started).group(1)
            booked = httpx.post(f"http://127.0.0.1:{errand_port}/api/v1/agent/restaurant/book", json=BOOKING,
                                headers={"Authorization": f"Bearer {test_key}", "Idempotency-Key": "cli-remote-1"},
                                timeout=60)
            # Errand mounts no sandbox of its own: its /sandbox and /sandbox/ lead to the remote one.
            own = httpx.get(f"http://127.0.0.1:{errand_port}/sandbox/api/sandbox-tables/restaurants")
            moved = [httpx.get(f"http://127.0.0.1:{errand_port}{path}") for path in ("/sandbox", "/sandbox/")]
    assert booked.status_code == 201, booked.text
    assert booked.json()["providerId"] == "sandbox-tables"
    assert own.status_code == 404
    assert [(m.status_code, m.headers["location"]) for m in moved] == [(308, f"{sandbox_url}/")] * 2
    # The sandbox keeps its own database: the booking is there, not in Errand's.
    assert rows(tmp_path / "var" / "sandbox.db", "sandbox_bookings") == 1
    assert rows(tmp_path / "var" / "errand.db", "sandbox_bookings") == 0


def test_serve_with_several_workers_on_sqlite_is_refused(tmp_path: Path) -> None:
    result = subprocess.run([ERRAND, "serve", "--workers", "2", "--port", str(free_port())], env=fresh_env(tmp_path),
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--workers on SQLite" in result.stderr and "PostgreSQL" in result.stderr
    assert not (tmp_path / "var" / "errand.db").exists()


def worker_processes(parent: int) -> int:
    """How many uvicorn worker processes (spawned children) ``parent`` has."""
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        count += ppid == parent and b"spawn_main" in cmdline
    return count


async def test_serve_with_two_workers_on_postgres_migrates_once_and_books(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("ERRAND_TEST_POSTGRES_URL is not set")
    db_url, name = await create_pg_database(PG_URL)
    try:
        port = free_port()
        env = fresh_env(tmp_path, ERRAND_DATABASE_URL=db_url)
        with running(["serve", "--workers", "2"], env, tmp_path, port) as server:
            started = await asyncio.to_thread(output_so_far, server)
            keys = re.findall(r"ar_(?:live|test)_[A-Za-z0-9_-]{32,}", started)
            test_key = next(k for k in keys if k.startswith("ar_test_"))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                         headers={"Authorization": f"Bearer {test_key}"}) as client:
                booked = await asyncio.gather(*(
                    client.post("/api/v1/agent/restaurant/book", headers={"Idempotency-Key": f"cli-workers-{i}"},
                                json=BOOKING | {"datetime": f"2027-06-0{i + 1}T12:00:00"}) for i in range(4)))
            workers = worker_processes(server.pid)
    finally:
        await drop_pg_database(PG_URL, name)
    assert len(keys) == 3, started
    assert "2 workers" in started
    assert workers == 2
    assert [r.status_code for r in booked] == [201] * 4, [r.text for r in booked]
