"""Post N execution jobs, C in flight at a time, against a running Errand; wait for each to stop; print the figures.

    .venv/bin/python bench/jobs.py --url http://127.0.0.1:3000 --key "$KEY" -n 100 -c 20

Jobs are spread over the four scenarios, over venues that book normally or after a
fallback, and each over a date of its own, so they never compete for the same capacity.
Printed: jobs/s (jobs that stopped per second of wall time), POST → terminal latency p50/p99
(as the client saw it, to the poll interval, and as the server recorded it, createdAt →
completedAt), the status counts, and two counts that must be 0:

- lost: jobs not terminal by the deadline;
- double-booked: holds and bookings the sandbox providers created during the run and
  still hold (their ledger, ``GET /sandbox/api/{provider}/ledger?since=``) beyond one per job
  that reached paused_payment or completed. It assumes nothing else books on the server
  during the run, and that the bench and the server share a clock. The ledger admits only
  Errand: the bench derives each provider's token as the server does, from the same
  ``ERRAND_*`` settings (``ERRAND_SECRET_KEY`` or the data dir's key).
"""

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from errand.kit.config import Settings

JOBS = "/api/v1/execution-jobs"
TERMINAL = {"paused_payment", "completed", "no_availability", "needs_login", "captcha", "error", "cancelled"}
BOOKED = {"paused_payment", "completed"}
PROFILE = {"first_name": "Bench", "last_name": "Traveler", "email": "bench@example.com", "phone": "+15550000000",
           "dob": "1990-01-01", "passport_number": "B1234567", "passport_country": "US"}

# (scenario, params without the date); no flaky venues (their retries wait on purpose).
RESTAURANTS = [("Le Bernardin", "New York", "19:00"), ("Carbone", "New York", "19:15"),
               ("Gramercy Tavern", "New York", "12:30"), ("Via Carota", "New York", "18:00"),
               ("Golden Gate Grill", "San Francisco", "12:00"), ("Dishoom", "London", "13:00"),
               ("Le Train Bleu", "Paris", "20:00")]
HOTELS = [("The Plaza", "New York"), ("Ace Hotel New York", "New York"), ("Hotel Zetta", "San Francisco"),
          ("The Savoy", "London"), ("Le Meurice", "Paris")]
FLIGHTS = [("New York", "San Francisco"), ("New York", "Tokyo"), ("Chicago", "Paris")]
EVENTS = [("Hamilton", "New York"), ("Les Miserables", "London"), ("Moulin Rouge Feerie", "Paris")]


def _event_day(day: date) -> date:
    """Every sandbox event plays on Wednesdays, Fridays and Saturdays."""
    while day.weekday() not in (2, 4, 5):
        day += timedelta(days=1)
    return day


def bodies(n: int, start: date) -> list[dict[str, Any]]:
    """N job requests; job i books on date start + i (events: the next day they play, still unique)."""
    kinds = itertools.cycle(["restaurant", "hotel", "flight", "activity"])
    venues = {"restaurant": itertools.cycle(RESTAURANTS), "hotel": itertools.cycle(HOTELS),
              "flight": itertools.cycle(FLIGHTS), "activity": itertools.cycle(EVENTS)}
    out, used_event_days = [], set()
    for i in range(n):
        kind, day = next(kinds), start + timedelta(days=i)
        if kind == "restaurant":
            name, city, hhmm = next(venues[kind])
            params = {"restaurant_name": name, "city": city, "date": str(day), "time": hhmm, "covers": 2}
        elif kind == "hotel":
            name, city = next(venues[kind])
            params = {"hotel_name": name, "city": city, "checkin": str(day),
                      "checkout": str(day + timedelta(days=1)), "adults": 2}
        elif kind == "flight":
            origin, dest = next(venues[kind])
            params = {"origin": origin, "dest": dest, "date": str(day), "passengers": 1}
        else:
            name, city = next(venues[kind])
            played = _event_day(day)
            while (name, played) in used_event_days:
                played = _event_day(played + timedelta(days=1))
            used_event_days.add((name, played))
            params = {"event_name": name, "city": city, "event_date": str(played), "num_tickets": 2}
        out.append({"request": {"scenario": kind, "params": params}, "profile": PROFILE,
                    "clientMetadata": {"agentId": "bench/jobs.py", "idempotencyKey": f"bench-{uuid.uuid4()}"}})
    return out


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b.replace("Z", "+00:00")) - datetime.fromisoformat(a.replace("Z", "+00:00"))) \
        .total_seconds()


async def ledger_total(client: httpx.AsyncClient, sandbox_url: str, since: str) -> tuple[int, dict[str, Any]]:
    """Active holds + bookings created since ``since``, over every sandbox provider."""
    providers = (await client.get("/api/v1/providers")).json()["providers"]
    settings = Settings()
    per_provider, active = {}, 0
    for p in providers:
        if not p["sandbox"]:
            continue
        token = settings.sandbox_api_token(p["id"])
        r = await client.get(f"{sandbox_url}/api/{p['id']}/ledger", params={"since": since},
                             headers={"Authorization": f"Bearer {token}"})
        if r.status_code != 200:
            print(f"ledger of {p['id']}: HTTP {r.status_code} {r.text[:200]}", file=sys.stderr)
            continue
        counts = r.json()["counts"]
        per_provider[p["id"]] = {k: v for k, v in counts.items() if v}
        active += counts["held"] + counts["booked"]
    return active, per_provider


async def run(url: str, key: str, sandbox_url: str, n: int, concurrency: int, deadline_s: float,
              poll_s: float) -> int:
    start_day = date.today() + timedelta(days=400 + uuid.uuid4().int % 2000)
    work = bodies(n, start_day)
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=60, limits=limits) as client:
        since = datetime.now(UTC).isoformat()
        t0 = time.perf_counter()
        deadline = t0 + deadline_s

        async def one(body: dict[str, Any]) -> dict[str, Any]:
            async with gate:
                posted = time.perf_counter()
                r = await client.post(JOBS, json=body)
                if r.status_code != 202:
                    return {"status": f"http_{r.status_code}", "latency": None, "job": None}
                job_id = r.json()["jobId"]
                while time.perf_counter() < deadline:
                    job = (await client.get(f"{JOBS}/{job_id}")).json()
                    if job["status"] in TERMINAL:
                        return {"status": job["status"], "latency": time.perf_counter() - posted, "job": job}
                    await asyncio.sleep(poll_s)
                return {"status": "lost", "latency": None, "job": {"jobId": job_id}}

        results = await asyncio.gather(*(one(b) for b in work))
        wall = time.perf_counter() - t0
        active, per_provider = await ledger_total(client, sandbox_url, since)

    statuses = Counter(r["status"] for r in results)
    done = [r for r in results if r["status"] in TERMINAL]
    client_lat = [r["latency"] * 1000 for r in done]
    server_lat = [_seconds(r["job"]["createdAt"], r["job"]["completedAt"]) * 1000 for r in done
                  if r["job"].get("completedAt")]
    booked = sum(1 for r in results if r["status"] in BOOKED)
    lost = statuses.get("lost", 0)
    double_booked = active - booked
    print(f"jobs n={n} c={concurrency}  {len(done) / wall:.1f} jobs/s  wall {wall:.1f} s")
    print(f"POST→terminal (client, poll {poll_s * 1000:.0f} ms)  p50 {statistics.median(client_lat):.0f} ms  "
          f"p99 {percentile(client_lat, 0.99):.0f} ms" if client_lat else "POST→terminal: no job finished")
    if server_lat:
        print(f"createdAt→completedAt (server)     p50 {statistics.median(server_lat):.0f} ms  "
              f"p99 {percentile(server_lat, 0.99):.0f} ms")
    print(f"statuses {dict(sorted(statuses.items()))}")
    print(f"sandbox ledger since start: {per_provider}")
    print(f"lost {lost}  double-booked {max(double_booked, 0)}"
          + (f"  (ledger shows {-double_booked} fewer holds than booked jobs!)" if double_booked < 0 else ""))
    return 1 if lost or double_booked else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--key", default=os.environ.get("ERRAND_API_KEY"), help="an agent key (or ERRAND_API_KEY)")
    parser.add_argument("--sandbox-url", help="the sandbox's root (default: <url>/sandbox)")
    parser.add_argument("-n", type=int, default=100, help="jobs")
    parser.add_argument("-c", type=int, default=20, help="jobs in flight at a time")
    parser.add_argument("--deadline", type=float, default=300, help="seconds before a job still running counts as lost")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between polls of one job")
    args = parser.parse_args()
    if not args.key:
        parser.error("--key or ERRAND_API_KEY is required")
    sandbox_url = args.sandbox_url or f"{args.url.rstrip('/')}/sandbox"
    sys.exit(asyncio.run(run(args.url, args.key, sandbox_url, args.n, args.c, args.deadline, args.poll)))


if __name__ == "__main__":
    main()
