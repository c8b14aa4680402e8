"""Time web-provider jobs from POST to paused_payment, at 1 and 4 jobs in flight, and the server's peak memory.

    .venv/bin/python bench/browser.py                      # starts its own server (SQLite, temp dir)
    .venv/bin/python bench/browser.py --provider web-stays -n 20 --concurrency 1,4
    .venv/bin/python bench/browser.py --url http://127.0.0.1:3000 --key "$KEY" --pid "$SERVER_PID"

Every job is forced onto one web-only provider (``allowedProviders``), on a date of its own,
so the autopilot drives the whole site each time (search → results → details → checkout) and
jobs never compete for capacity. One warm-up job first starts the browser; its time is shown
apart ("cold"). Printed per concurrency level: POST → paused_payment p50/p99 as the client saw it
(polling every 50 ms) and as the server recorded it (createdAt → completedAt), and statuses.

Memory is sampled every 100 ms over the server process and all its descendants (the Playwright
driver and every Chromium process): the peak of the summed RSS, and of the summed PSS, which
counts pages shared between Chromium's processes once (RSS over-counts them).
"""

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

JOBS = "/api/v1/execution-jobs"
TERMINAL = {"paused_payment", "completed", "no_availability", "needs_login", "captcha", "error", "cancelled"}
PROFILE = {"first_name": "Bench", "last_name": "Traveler", "email": "bench@example.com", "phone": "+15550000000",
           "dob": "1990-01-01", "passport_number": "B1234567", "passport_country": "US"}
SCENARIO = {"web-tables": "restaurant", "web-stays": "hotel", "web-air": "flight", "web-tickets": "activity"}


def body(provider: str, day: date) -> dict[str, Any]:
    scenario = SCENARIO[provider]
    if scenario == "restaurant":
        params: dict[str, Any] = {"restaurant_name": "Le Bernardin", "city": "New York", "date": str(day),
                                  "time": "19:00", "covers": 2}
    elif scenario == "hotel":
        params = {"hotel_name": "The Plaza", "city": "New York", "checkin": str(day),
                  "checkout": str(day + timedelta(days=1)), "adults": 2}
    elif scenario == "flight":
        params = {"origin": "New York", "dest": "San Francisco", "date": str(day), "passengers": 1}
    else:
        params = {"event_name": "Hamilton", "city": "New York", "event_date": str(day), "num_tickets": 2}
    return {"request": {"scenario": scenario, "params": params}, "profile": PROFILE,
            "consent": {"allowedProviders": [provider], "allowVenueSwitch": False}}


def days(provider: str, start: date, n: int) -> list[date]:
    """N distinct dates from ``start``; events only play on Wednesdays, Fridays and Saturdays."""
    out, day = [], start
    while len(out) < n:
        if SCENARIO[provider] != "activity" or day.weekday() in (2, 4, 5):
            out.append(day)
        day += timedelta(days=1)
    return out


# --- memory ---------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _kib(path: str, field: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler:
    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid, self.every = pid, every
        self.peak_rss = self.peak_pss = self.peak_processes = 0
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        pids = _descendants(self.pid)
        rss = sum(_kib(f"/proc/{p}/status", "VmRSS") for p in pids)
        pss = sum(_kib(f"/proc/{p}/smaps_rollup", "Pss") for p in pids)
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
        self.peak_processes = max(self.peak_processes, len(pids))

    async def _run(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(self.every)

    def __enter__(self) -> "MemorySampler":
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()


# --- jobs -----------------------------------------------------------------------------------


def _server_seconds(job: dict[str, Any]) -> float:
    created = datetime.fromisoformat(job["createdAt"].replace("Z", "+00:00"))
    completed = datetime.fromisoformat((job["completedAt"] or job["updatedAt"]).replace("Z", "+00:00"))
    return (completed - created).total_seconds()


async def one(client: httpx.AsyncClient, payload: dict[str, Any], deadline: float) -> tuple[str, float, float]:
    t0 = time.perf_counter()
    response = await client.post(JOBS, json=payload)
    response.raise_for_status()
    job_id = response.json()["jobId"]
    while True:
        job = (await client.get(f"{JOBS}/{job_id}")).json()
        if job["status"] in TERMINAL:
            return job["status"], time.perf_counter() - t0, _server_seconds(job)
        if time.perf_counter() - t0 > deadline:
            return "lost", time.perf_counter() - t0, float("nan")
        await asyncio.sleep(0.05)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def bench(url: str, key: str, pid: int | None, provider: str, n: int, levels: list[int]) -> None:
    start = date.today() + timedelta(days=500 + uuid.uuid4().int % 300)
    dates = iter(days(provider, start, 1 + n * len(levels)))
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        sampler = MemorySampler(pid) if pid else None
        if sampler:
            sampler.__enter__()
        try:
            status, cold, _ = await one(client, body(provider, next(dates)), 120)
            print(f"{provider}: cold job (starts the browser) {status} in {cold:.2f} s")
            for level in levels:
                gate = asyncio.Semaphore(level)

                async def gated(payload: dict[str, Any]) -> tuple[str, float, float]:
                    async with gate:
                        return await one(client, payload, 180)

                t0 = time.perf_counter()
                results = await asyncio.gather(*(gated(body(provider, next(dates))) for _ in range(n)))
                wall = time.perf_counter() - t0
                seen = [r[1] for r in results if r[0] == "paused_payment"]
                served = [r[2] for r in results if r[0] == "paused_payment"]
                statuses = dict(Counter(r[0] for r in results))
                if not seen:
                    print(f"c={level} n={n}: no job reached paused_payment {statuses}")
                    continue
                print(f"c={level} n={n}  {n / wall:5.2f} jobs/s  POST→paused_payment "
                      f"p50 {statistics.median(seen):5.2f} s  p99 {pct(seen, 0.99):5.2f} s   "
                      f"(server p50 {statistics.median(served):5.2f} s  p99 {pct(served, 0.99):5.2f} s)  {statuses}")
        finally:
            if sampler:
                sampler.__exit__()
                sampler.sample()
                print(f"server pid {pid} + descendants: peak RSS {sampler.peak_rss / 1024:.0f} MiB "
                      f"(summed; PSS {sampler.peak_pss / 1024:.0f} MiB), up to {sampler.peak_processes} processes")


# --- a server of our own --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _errand() -> str:
    return shutil.which("errand") or str(Path(sys.executable).with_name("errand"))


async def own_server(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="errand-bench-"))
    port = _free_port()
    env = {**os.environ, "ERRAND_DATA_DIR": str(workdir), "ERRAND_PORT": str(port), "ERRAND_LOG_LEVEL": "WARNING",
           "ERRAND_BROWSER_CONTEXTS": str(max(args.levels))}
    subprocess.run([_errand(), "migrate"], env=env, check=True, capture_output=True)
    minted = subprocess.run([_errand(), "create-api-key", "--org", "Bench"], env=env, check=True,
                            capture_output=True, text=True)
    key = minted.stdout.strip().splitlines()[-1]
    server = subprocess.Popen([_errand(), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2) as probe:
            for _ in range(200):
                try:
                    if (await probe.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        await bench(url, key, server.pid, args.provider, args.n, args.levels)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running Errand (default: start one)")
    parser.add_argument("--key", default=os.environ.get("ERRAND_API_KEY"), help="an agent key, with --url")
    parser.add_argument("--pid", type=int, help="the --url server's pid, to sample its memory")
    parser.add_argument("--provider", default="web-tables", choices=sorted(SCENARIO))
    parser.add_argument("-n", type=int, default=20, help="jobs per concurrency level")
    parser.add_argument("--concurrency", default="1,4", help="comma-separated jobs in flight, e.g. 1,4")
    args = parser.parse_args()
    args.levels = [int(c) for c in args.concurrency.split(",")]
    if args.url:
        if not args.key:
            parser.error("--key or ERRAND_API_KEY is required with --url")
        asyncio.run(bench(args.url, args.key, args.pid, args.provider, args.n, args.levels))
    else:
        asyncio.run(own_server(args))


if __name__ == "__main__":
    main()
