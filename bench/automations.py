"""Automations under load: events ingested/s, event → execution completed, approval decision → resumed.

    .venv/bin/python bench/automations.py [--pg-url postgresql://postgres@127.0.0.1:5432/postgres] [-n 400] [-c 16]

(--pg-url or ERRAND_BENCH_POSTGRES_URL adds the procrastinate shape: PostgreSQL, `errand serve
--no-worker` and one `errand worker`.) For each shape it starts its own servers on fresh data,
mints a test admin key of the demo organization (``errand create-api-key``), activates two agents
over HTTP, and prints:

- ingest: ``-n`` events POSTed to ``/api/events/ingest`` by ``-c`` concurrent clients: events/s
  (202s per second of wall time) and the 202's p50/p99 as the client saw it; beside it the same
  client against the bare endpoint (bench/bare.py) for scale;
- event → completed for a 2-step agent (a branch, then a chat notification queued to the
  sandbox): p50/p99 of ``completed_at`` − the event's ``received_at``, both as the server
  recorded them (``GET /api/executions/{id}``), over every execution of the burst (mostly time
  spent queued behind the burst's other events) and how many were not completed by the
  deadline (must be 0); then ``--single`` events sent one at a time, each after the last one's
  execution completed (the latency of one event on an idle server);
- decision → resumed for an agent waiting at an approval gate: ``-g`` gates are decided one at a
  time; p50/p99 of the step after the gate starting (its ``started_at``) − the decision's
  ``decided_at`` (server clock), and of the client's POST → execution completed (polled every 10 ms).

The goal the issue sets: decision → resumed p99 ≤ 2 s on the embedded default and on procrastinate.
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import _procs  # noqa: E402

TWO_STEPS = {
    "name": "Bench: two steps",
    "trigger": {"type": "bus_event", "source_product": "bench", "event_type": "bench.ping"},
    "steps": [
        {"type": "branch", "id": "worth_it", "condition": "event_payload.n >= 0"},
        {"type": "notification", "id": "tell_ops", "channel": "chat", "recipients": ["#bench"],
         "body": "ping {{ event_payload.n }}"},
    ],
}
GATED = {
    "name": "Bench: gated",
    "trigger": {"type": "bus_event", "source_product": "bench", "event_type": "bench.gate"},
    "steps": [
        {"type": "approval_gate", "id": "ask", "message": "Go ahead with {{ event_payload.n }}?",
         "timeout_minutes": 60},
        {"type": "branch", "id": "after", "condition": "event_payload.n >= 0"},
    ],
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _line(name: str, values_ms: list[float], extra: str = "") -> str:
    if not values_ms:
        return f"  {name:34} no samples {extra}"
    return (f"  {name:34} p50 {statistics.median(values_ms):8.1f} ms  p99 {percentile(values_ms, 0.99):8.1f} ms"
            f"  (n={len(values_ms)}) {extra}")


async def _post_many(url: str, path: str, n: int, concurrency: int, headers: dict[str, str],
                     body: Any) -> tuple[float, list[float], int]:
    """POST ``body(i)`` n times, ``concurrency`` at a time: (wall seconds, latencies ms, non-2xx)."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as client:
        async def one(i: int) -> None:
            nonlocal failures
            async with gate:
                t = time.perf_counter()
                r = await client.post(path, json=body(i))
                latencies.append((time.perf_counter() - t) * 1000)
                if r.status_code >= 300:
                    failures += 1
                    if failures <= 3:
                        print(f"    {path}: HTTP {r.status_code} {r.text[:200]}", file=sys.stderr)
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - t0, latencies, failures


async def _activate(client: httpx.AsyncClient, definition: dict[str, Any]) -> str:
    created = await client.post("/api/agents", json=definition)
    created.raise_for_status()
    agent_id = created.json()["id"]
    (await client.put(f"/api/agents/{agent_id}", json={"status": "active"})).raise_for_status()
    return agent_id


async def _executions(client: httpx.AsyncClient, agent_id: str) -> list[dict[str, Any]]:
    out, cursor = [], None
    while True:
        params = {"agent_id": agent_id, "limit": "200", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/executions", params=params)).json()
        out += page["executions"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


async def _wait_for(client: httpx.AsyncClient, agent_id: str, n: int, statuses: set[str],
                    deadline_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + deadline_s
    while True:
        runs = await _executions(client, agent_id)
        if sum(r["status"] in statuses for r in runs) >= n or time.monotonic() > deadline:
            return runs
        await asyncio.sleep(0.25)


async def measure(url: str, bare_url: str, key: str, args: argparse.Namespace) -> None:
    headers = {"X-Integration-Key": key}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        two_steps = await _activate(client, TWO_STEPS)
        gated = await _activate(client, GATED)
        run = uuid.uuid4().hex[:8]

        def ping(i: int) -> dict[str, Any]:
            return {"id": f"{run}-{i}", "event_type": "bench.ping", "source_product": "bench", "payload": {"n": i}}

        bare_wall, bare_lat, _ = await _post_many(bare_url, "/", args.n, args.c, {}, lambda i: {"n": i})
        wall, latencies, failed = await _post_many(url, "/api/events/ingest", args.n, args.c, headers, ping)
        print(f"  ingest {args.n} events, c={args.c}: {args.n / wall:8.1f} events/s  "
              f"p50 {statistics.median(latencies):6.1f} ms  p99 {percentile(latencies, 0.99):6.1f} ms  "
              f"non-2xx {failed}   (bare: {args.n / bare_wall:8.1f} req/s, ratio {bare_wall / wall:5.3f})")

        runs = await _wait_for(client, two_steps, args.n, {"completed", "failed", "cancelled"}, args.deadline)
        spans, lost = [], 0
        for r in runs:
            if r["status"] != "completed":
                lost += 1
                continue
            detail = (await client.get(f"/api/executions/{r['id']}")).json()
            spans.append((_at(detail["completed_at"]) - _at(detail["trigger_event"]["received_at"])).total_seconds()
                         * 1000)
        lost += max(args.n - len(runs), 0)
        print(_line("event -> completed, burst", spans, f"not completed: {lost}"))

        single = []
        for i in range(args.single):
            sent = await client.post("/api/events/ingest", json=ping(args.n + i))
            sent.raise_for_status()
            while True:
                newest = (await client.get("/api/executions", params={"agent_id": two_steps, "limit": "1"})).json()
                top = newest["executions"][0] if newest["executions"] else None
                if top and top["status"] == "completed":
                    detail = (await client.get(f"/api/executions/{top['id']}")).json()
                    if detail["trigger_event"]["id"] == sent.json()["id"]:
                        break
                await asyncio.sleep(0.01)
            single.append((_at(detail["completed_at"]) - _at(detail["trigger_event"]["received_at"])).total_seconds()
                          * 1000)
        print(_line("event -> completed, one at a time", single))

        def gate(i: int) -> dict[str, Any]:
            return {"id": f"{run}-g{i}", "event_type": "bench.gate", "source_product": "bench", "payload": {"n": i}}

        await _post_many(url, "/api/events/ingest", args.gates, min(args.c, args.gates), headers, gate)
        waiting = await _wait_for(client, gated, args.gates, {"waiting_approval"}, args.deadline)
        pending = [a for a in (await client.get("/api/approvals", params={"status": "pending"})).json()["approvals"]
                   if a.get("agent_id") == gated]
        server_ms, client_ms = [], []
        for approval in pending:
            t = time.perf_counter()
            decided = await client.post(f"/api/approvals/{approval['id']}/decision", json={"decision": "approved"})
            decided.raise_for_status()
            while True:
                detail = (await client.get(f"/api/executions/{approval['execution_id']}")).json()
                if detail["status"] in ("completed", "failed", "cancelled"):
                    break
                await asyncio.sleep(0.01)
            client_ms.append((time.perf_counter() - t) * 1000)
            after = next(s for s in detail["steps"] if s["step_id"] == "after")
            server_ms.append((_at(after["started_at"]) - _at(decided.json()["decided_at"])).total_seconds() * 1000)
        print(_line("decision -> resumed (server)", server_ms,
                    f"gates waiting: {sum(r['status'] == 'waiting_approval' for r in waiting)}"))
        print(_line("decision -> completed (client)", client_ms))


def _start(work: Path, env: dict[str, str], port: int, *, worker: bool) -> list[_procs.Server]:
    serve = ["serve", "--port", str(port)] + ([] if worker else ["--no-worker"])
    servers = [_procs.Server("errand", _procs.errand(serve), env=env, cwd=work,
                             health_url=f"http://127.0.0.1:{port}/healthz").wait_healthy()]
    if not worker:
        servers.append(_procs.Server("worker", _procs.errand(["worker"]), env=env, cwd=work,
                                     health_url=f"http://127.0.0.1:{port}/healthz"))
    return servers


def shape(name: str, extra_env: dict[str, str], args: argparse.Namespace, *, worker: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="errand-bench-automations-"))
    port, bare_port = 3400 + os.getpid() % 200, 3700 + os.getpid() % 200
    env = {**os.environ, "ERRAND_DATA_DIR": str(work / "var"), "ERRAND_PORT": str(port), **extra_env}
    print(f"{name}:")
    bare = _procs.Server("bare", _procs.bare(bare_port), env=env, cwd=work,
                         health_url=f"http://127.0.0.1:{bare_port}/").wait_healthy()
    servers: list[_procs.Server] = []
    try:
        servers = _start(work, env, port, worker=worker)
        key = _procs.bench_key(env, work, role="admin")
        asyncio.run(measure(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}", key, args))
    finally:
        for server in reversed(servers):
            server.stop()
        bare.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=400, help="events ingested (default 400)")
    parser.add_argument("-c", type=int, default=16, help="concurrent ingesting clients (default 16)")
    parser.add_argument("-g", "--gates", type=int, default=40, help="approval gates decided (default 40)")
    parser.add_argument("--single", type=int, default=30, help="events sent one at a time (default 30)")
    parser.add_argument("--deadline", type=float, default=120, help="seconds to wait for executions")
    parser.add_argument("--pg-url", default=os.environ.get("ERRAND_BENCH_POSTGRES_URL"))
    args = parser.parse_args()
    shape("embedded default (SQLite, in-process runner)", {}, args, worker=True)
    if args.pg_url:
        name = f"errand_bench_automations_{os.getpid()}"
        url = _procs.create_database(args.pg_url, name)
        try:
            shape("PostgreSQL + procrastinate (serve --no-worker + 1 worker)",
                  {"ERRAND_DATABASE_URL": url, "ERRAND_RUNNER": "procrastinate"}, args, worker=False)
        finally:
            _procs.drop_database(args.pg_url, name)


if __name__ == "__main__":
    main()
