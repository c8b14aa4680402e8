"""Errand's hot path under wrk: bookings, replays and an auth-only GET, against a bare Starlette endpoint.

    .venv/bin/python bench/book.py [--pg-url postgresql://postgres@127.0.0.1:5432/postgres] [-d 6] [-c 32]

(--pg-url or ERRAND_BENCH_POSTGRES_URL adds PostgreSQL; wrk is Debian's ``wrk`` package.)
For each database (SQLite; PostgreSQL when given, a fresh database per setup) and each
sandbox placement (in-process, the embedded default; out of process, ``errand sandbox``),
it starts its own servers on fresh data, mints a test key of the demo organization with a
daily limit no run reaches (``errand create-api-key``), and prints:

- idle RSS of ``errand serve`` (and of the sandbox), once /healthz answers;
- the guard overhead at concurrency 1: p50/p95 of auth + idempotency + policy from the
  ``Server-Timing`` header (:mod:`errand.kit.timing`) over N sequential bookings;
- for booking (a new slot and Idempotency-Key per request; keys carry a run id), replay (one
  key, after a first booking) and auth-only GET (``/api/v1/providers``): wrk's rps, p50, p99
  and non-2xx count, CPU ms per request of the Errand process (utime + stime from
  /proc/PID/stat, before/after, over completed requests; + the sandbox's when apart), and
  the ratio to the bare endpoint (bench/bare.py, same uvicorn settings), measured just
  before each, so that both see the same machine.

Default durations keep the whole run at about 2-3 minutes with PostgreSQL.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import _procs  # noqa: E402
import _wrk  # noqa: E402

GUARD_PHASES = ("auth", "idempotency", "policy")


@dataclass
class Ports:
    errand: int
    sandbox: int
    bare: int


@dataclass
class Measure:
    name: str
    wrk: _wrk.WrkResult
    cpu_ms: float
    sandbox_cpu_ms: float | None
    bare: _wrk.WrkResult | None = None
    bare_cpu_ms: float = 0.0

    def line(self) -> str:
        r = self.wrk
        cpu = f"{self.cpu_ms:7.2f}" + (f" + sbx {self.sandbox_cpu_ms:5.2f}" if self.sandbox_cpu_ms is not None else " " * 12)
        ratio = f"{r.rps / self.bare.rps:7.4f}" if self.bare and self.bare.rps else "      -"
        return (f"  {self.name:7} {r.rps:8.1f} rps  p50 {r.p50_ms:8.2f} ms  p99 {r.p99_ms:8.2f} ms  "
                f"cpu/req {cpu} ms  vs bare {ratio}  non-2xx {r.non_2xx}"
                + (f"  socket errors {r.socket_errors}" if r.socket_errors else ""))


class Run:
    """One bench run: its id (in every Idempotency-Key), options, and the next unused booking slot."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.id = time.strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.next_slot = 0
        self.work = Path(tempfile.mkdtemp(prefix="errand-bench-"))

    def slots(self, used: int) -> int:
        """Reserve ``used`` slots (with room for requests wrk sent but did not count); the first one."""
        first = self.next_slot
        self.next_slot += used + 4 * self.args.connections + 100
        return first


def measure(run: Run, name: str, url: str, script: Path, env: dict[str, str], errand: _procs.Server,
            sandbox: _procs.Server | None, bare_server: _procs.Server) -> Measure:
    a = run.args
    bare_cpu = bare_server.cpu_seconds()
    bare = _wrk.run(bare_server.health_url, seconds=a.bare_duration, connections=a.connections, threads=a.threads)
    bare_cpu_ms = (bare_server.cpu_seconds() - bare_cpu) * 1000 / max(1, bare.requests)
    base = run.next_slot
    cpu0, sbx0 = errand.cpu_seconds(), sandbox.cpu_seconds() if sandbox else 0.0
    result = _wrk.run(url, seconds=a.duration, connections=a.connections, threads=a.threads, script=script,
                      env={**env, "BASE": str(base)})
    cpu1, sbx1 = errand.cpu_seconds(), sandbox.cpu_seconds() if sandbox else 0.0
    run.slots(result.requests)
    done = max(1, result.requests)
    return Measure(name, result, (cpu1 - cpu0) * 1000 / done,
                   (sbx1 - sbx0) * 1000 / done if sandbox else None, bare, bare_cpu_ms)


def server_timing(header: str) -> dict[str, float]:
    """``auth;dur=1.2, total;dur=3.4`` → {"auth": 1.2, "total": 3.4}."""
    phases: dict[str, float] = {}
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur":
                phases[name] = phases.get(name, 0.0) + float(value)
    return phases


def guard_overhead(run: Run, base_url: str, key: str) -> str:
    """N sequential bookings; p50/p95 of auth + idempotency + policy, and of the whole of Errand's time."""
    first = run.slots(run.args.sequential)
    guard, totals, statuses = [], [], []
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for i in range(first, first + run.args.sequential):
            response = client.post(_wrk.BOOK_PATH, json=_wrk.slot_body(i),
                                   headers={"Idempotency-Key": f"{run.id}-seq-{i}"})
            statuses.append(response.status_code)
            phases = server_timing(response.headers.get("server-timing", ""))
            guard.append(sum(phases.get(p, 0.0) for p in GUARD_PHASES))
            totals.append(phases.get("total", float("nan")))
    failed = sum(1 for s in statuses if not 200 <= s < 300)

    def p(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1]

    return (f"  guard   c=1, {len(guard)} bookings: auth+idempotency+policy p50 {p(guard, 50):.2f} ms  "
            f"p95 {p(guard, 95):.2f} ms  (Server-Timing total p50 {p(totals, 50):.2f} ms)  non-2xx {failed}")


def setup(run: Run, database: str, apart: bool, ports: Ports) -> None:
    a = run.args
    label = f"{database}, sandbox {'out of process (errand sandbox)' if apart else 'in-process'}"
    home = run.work / f"{database}-{'apart' if apart else 'embedded'}"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERRAND_")}
    env |= {"ERRAND_DATA_DIR": str(home / "var"), "ERRAND_PORT": str(ports.errand)}
    databases = []
    if database == "postgresql":
        stem = f"errand_bench_{run.id.replace('-', '_')}_{'apart' if apart else 'embedded'}"
        env["ERRAND_DATABASE_URL"] = _procs.create_database(a.pg_url, stem)
        databases.append(stem)
        if apart:
            env["ERRAND_SANDBOX_DATABASE_URL"] = _procs.create_database(a.pg_url, stem + "_sandbox")
            databases.append(stem + "_sandbox")
    servers: list[_procs.Server] = []
    try:
        sandbox = None
        if apart:
            env["ERRAND_SANDBOX_URL"] = f"http://127.0.0.1:{ports.sandbox}/sandbox"
            sandbox = _procs.Server("sandbox", _procs.errand(["sandbox", "--port", str(ports.sandbox)]), env=env,
                                    cwd=home, health_url=f"http://127.0.0.1:{ports.sandbox}/healthz")
            servers.append(sandbox.wait_healthy())
        errand = _procs.Server("errand", _procs.errand(["serve", "--port", str(ports.errand)]), env=env, cwd=home,
                               health_url=f"http://127.0.0.1:{ports.errand}/healthz")
        servers.append(errand.wait_healthy())
        bare = _procs.Server("bare", _procs.bare(ports.bare), env=env, cwd=home,
                             health_url=f"http://127.0.0.1:{ports.bare}/")
        servers.append(bare.wait_healthy())
        time.sleep(1)
        rss = f"idle RSS errand {errand.rss_mb():.0f} MB" + (f", sandbox {sandbox.rss_mb():.0f} MB" if sandbox else "")
        print(f"== {label}  ({rss})", flush=True)
        key = _procs.bench_key(env, home)
        url = f"http://127.0.0.1:{ports.errand}"
        print(guard_overhead(run, url, key), flush=True)
        replay_body = _wrk.slot_body(run.slots(1))
        replay_key = f"{run.id}-replay"
        first = httpx.post(url + _wrk.BOOK_PATH, json=replay_body, timeout=30,
                           headers={"Authorization": f"Bearer {key}", "Idempotency-Key": replay_key})
        if first.status_code != 201:
            print(f"  the booking to replay failed: {first.status_code} {first.text[:300]}")
        scripts = _wrk.write_scripts(home, replay_key=replay_key, replay_body=replay_body)
        wrk_env = {"KEY": key, "RUN": run.id}
        for name, path, script in (("book", _wrk.BOOK_PATH, "book"), ("replay", _wrk.BOOK_PATH, "replay"),
                                   ("get", "/api/v1/providers", "get")):
            m = measure(run, name, url + path, scripts[script], wrk_env, errand, sandbox, bare)
            print(f"  bare    {m.bare.rps:8.1f} rps  p50 {m.bare.p50_ms:8.2f} ms  p99 {m.bare.p99_ms:8.2f} ms  "
                  f"cpu/req {m.bare_cpu_ms:7.2f}             ms", flush=True)
            print(m.line(), flush=True)
    finally:
        for server in reversed(servers):
            server.stop()
        for name in databases:
            _procs.drop_database(a.pg_url, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", default=os.environ.get("ERRAND_BENCH_POSTGRES_URL"),
                        help="a PostgreSQL server (any database on it) to create fresh databases on")
    parser.add_argument("-d", "--duration", type=float, default=5, help="seconds per wrk measure of Errand")
    parser.add_argument("--bare-duration", type=float, default=2, help="seconds per wrk measure of the bare app")
    parser.add_argument("-c", "--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("-t", "--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("-n", "--sequential", type=int, default=40, help="sequential bookings for the guard figure")
    parser.add_argument("--port", type=int, default=3510, help="errand serve's port (bare: +10, sandbox: +100)")
    parser.add_argument("--sandbox-port", type=int, help="errand sandbox's port (default: --port + 100)")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="one database only")
    parser.add_argument("--sandbox", choices=["embedded", "apart"], help="one sandbox placement only")
    args = parser.parse_args()
    run = Run(args)
    ports = Ports(errand=args.port, sandbox=args.sandbox_port or args.port + 100, bare=args.port + 10)
    databases = [d for d in ("sqlite", "postgresql") if d == "sqlite" or args.pg_url]
    print(f"errand bench run {run.id}: wrk -t{args.threads} -c{args.connections}, {args.duration:g} s per measure "
          f"(bare {args.bare_duration:g} s, just before each); data under {run.work}", flush=True)
    started = time.monotonic()
    for database in [d for d in databases if args.only in (None, d)]:
        for apart in (False, True):
            if args.sandbox in (None, "apart" if apart else "embedded"):
                setup(run, database, apart, ports)
    print(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
