"""Drive N booking requests, C at a time, against a running Errand and print throughput and latency.

    .venv/bin/python bench/book.py --url http://127.0.0.1:3000 --key "$KEY" -n 200 -c 20

Each request books a party of 2 at a different slot (restaurants × dates × times), with its
own Idempotency-Key, so the figures measure the booking path, not capacity refusals.
A second pass replays every request with the same key and reports the replay latency.
"""

import argparse
import asyncio
import itertools
import os
import statistics
import time
import uuid
from collections import Counter
from datetime import date, timedelta

import httpx

RESTAURANTS = [("Golden Gate Grill", "San Francisco"), ("Balthazar", "New York"),
               ("Girl & the Goat", "Chicago"), ("Dishoom", "London"), ("Le Train Bleu", "Paris")]
TIMES = ["12:00", "12:15", "12:30", "12:45", "13:00", "13:15", "13:30", "13:45"]


def bodies(n: int, start: date) -> list[dict]:
    slots = itertools.product(range(365), RESTAURANTS, TIMES)
    out = []
    for (offset, (name, city), hhmm), _ in zip(slots, range(n)):
        out.append({"restaurantName": name, "city": city, "partySize": 2,
                    "datetime": f"{start + timedelta(days=offset)}T{hhmm}:00",
                    "customer": {"name": "Bench User", "email": "bench@example.com"}})
    return out


async def run(url: str, key: str, n: int, concurrency: int) -> None:
    start = date.today() + timedelta(days=400 + uuid.uuid4().int % 300)
    work = [(str(uuid.uuid4()), b) for b in bodies(n, start)]
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=60, limits=limits) as client:

        async def one(idem: str, body: dict) -> tuple[int, float]:
            async with sem:
                t0 = time.perf_counter()
                r = await client.post("/api/v1/agent/restaurant/book", json=body, headers={"Idempotency-Key": idem})
                return r.status_code, time.perf_counter() - t0

        for label in ("book", "replay"):
            t0 = time.perf_counter()
            results = await asyncio.gather(*(one(i, b) for i, b in work))
            wall = time.perf_counter() - t0
            lat = sorted(d * 1000 for _, d in results)
            codes = Counter(c for c, _ in results)
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            print(f"{label:6} n={n} c={concurrency}  {n / wall:7.1f} req/s  "
                  f"p50 {statistics.median(lat):6.1f} ms  p99 {p99:6.1f} ms  statuses {dict(codes)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--key", default=os.environ.get("ERRAND_API_KEY"), help="an agent key (or ERRAND_API_KEY)")
    parser.add_argument("-n", type=int, default=200, help="requests")
    parser.add_argument("-c", type=int, default=20, help="concurrent requests")
    args = parser.parse_args()
    if not args.key:
        parser.error("--key or ERRAND_API_KEY is required")
    asyncio.run(run(args.url, args.key, args.n, args.c))


if __name__ == "__main__":
    main()
