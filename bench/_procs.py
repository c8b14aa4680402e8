"""The processes bench/book.py measures: started fresh, read from /proc, stopped; and fresh PostgreSQL databases."""

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

BIN = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Server:
    """A server process (``errand serve``, ``errand sandbox``, the bare app) with its output in ``log``."""

    def __init__(self, name: str, command: list[str], *, env: dict[str, str], cwd: Path, health_url: str) -> None:
        self.name, self.health_url = name, health_url
        self.log = cwd / f"{name}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_healthy(self, timeout: float = 90) -> "Server":
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.health_url, timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.output()[-3000:]}")
            time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text()

    def cpu_seconds(self) -> float:
        """utime + stime of the process so far (/proc/PID/stat fields 14 and 15)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def errand(args: list[str]) -> list[str]:
    return [str(BIN / "errand"), *args]


def bare(port: int) -> list[str]:
    """The bare Starlette app under the uvicorn settings `errand serve` uses (log level warning, defaults otherwise)."""
    return [sys.executable, "-m", "uvicorn", "bare:app", "--app-dir", str(Path(__file__).parent),
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]


def bench_key(env: dict[str, str], cwd: Path, role: str = "agent") -> str:
    """A test key (of ``role``) of the demo organization with a daily limit no run reaches (the demo
    keys allow 10,000 requests a day, fewer than one run makes), minted with ``errand create-api-key``."""
    done = subprocess.run(errand(["create-api-key", "--org", "Demo", "--env", "test", "--prefix", "ar",
                                  "--name", "bench", "--rate-limit-per-day", "1000000000", "--role", role,
                                  "--json"]),
                          env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"errand create-api-key failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["key"]


def _admin_url(url: str) -> str:
    """A plain libpq URL to the server's ``postgres`` database, from any SQLAlchemy PostgreSQL URL."""
    base = re.sub(r"^postgresql\+\w+://", "postgresql://", url).rsplit("/", 1)[0]
    return base + "/postgres"


async def _admin(server_url: str, *statements: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_admin_url(server_url))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def create_database(server_url: str, name: str) -> str:
    """A fresh database ``name`` on the PostgreSQL server of ``server_url``; its asyncpg URL."""
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'))
    return re.sub(r"^postgresql(\+\w+)?://", "postgresql+asyncpg://", server_url).rsplit("/", 1)[0] + "/" + name


def drop_database(server_url: str, name: str) -> None:
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
