"""wrk for bench/book.py: the Lua scripts it runs, and its report parsed.

wrk is Debian's ``wrk`` package (``apt-get install wrk``, /usr/bin/wrk): a closed-loop
generator with C connections over T threads, reporting latency percentiles (``--latency``)
and the count of non-2xx/3xx answers.
"""

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

BOOK_PATH = "/api/v1/agent/restaurant/book"
RESTAURANTS = [("Golden Gate Grill", "San Francisco"), ("Balthazar", "New York"),
               ("Girl & the Goat", "Chicago"), ("Dishoom", "London"), ("Le Train Bleu", "Paris")]
TIMES = ["12:00", "12:15", "12:30", "12:45", "13:00", "13:15", "13:30", "13:45"]
# Days ahead the slots spread over: inside the sandbox's 730-day booking horizon.
DAYS = 700
CUSTOMER = {"name": "Bench User", "email": "bench@example.com"}

# Booking i (unique across threads: counter * threads + thread id, from BASE) is restaurant i % 5,
# time (i / 5) % 8, day 2 + (i / 40) % DAYS: 28 000 distinct slots, so capacity never refuses.
_BOOK_LUA = """
local key, run, base = os.getenv("KEY"), os.getenv("RUN"), tonumber(os.getenv("BASE"))
local rest = %(restaurants)s
local times = %(times)s
local threads, counter = 0, 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) nthreads = tonumber(os.getenv("THREADS")) end
request = function()
  counter = counter + 1
  local i = base + counter * nthreads + tid
  local r = rest[(i %% 5) + 1]
  local t = times[(math.floor(i / 5) %% 8) + 1]
  local day = os.date("%%Y-%%m-%%d", os.time() + 86400 * (2 + math.floor(i / 40) %% %(days)d))
  local body = string.format('{"restaurantName":%%s,"city":%%s,"partySize":2,"datetime":"%%sT%%s:00","customer":%(customer)s}',
                             r[1], r[2], day, t)
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key,
                   ["Idempotency-Key"] = run .. "-" .. i}
  return wrk.format("POST", "%(path)s", headers, body)
end
"""

_FIXED_LUA = """
wrk.method = %(method)s
wrk.body = %(body)s
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
%(headers)s
"""


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Lua string literal for these ASCII texts


def _lua_list(items: list[str]) -> str:
    return "{" + ", ".join(map(_lua_string, items)) + "}"


def slot_body(i: int) -> dict:
    """Booking ``i``'s body, the same slot the Lua script gives request ``i`` (for the sequential guard run)."""
    name, city = RESTAURANTS[i % 5]
    day = date.today() + timedelta(days=2 + (i // 40) % DAYS)
    return {"restaurantName": name, "city": city, "partySize": 2, "datetime": f"{day}T{TIMES[(i // 5) % 8]}:00",
            "customer": CUSTOMER}


def write_scripts(directory: Path, *, replay_key: str, replay_body: dict) -> dict[str, Path]:
    """book.lua (a new slot and key per request), replay.lua (one key and body), get.lua (auth-only GET)."""
    scripts = {
        "book": _BOOK_LUA % {"restaurants": "{" + ", ".join(_lua_list([json.dumps(n), json.dumps(c)])
                                                            for n, c in RESTAURANTS) + "}",
                             "times": _lua_list(TIMES), "days": DAYS,
                             "customer": json.dumps(CUSTOMER).replace("%", "%%"), "path": BOOK_PATH},
        "replay": _FIXED_LUA % {"method": '"POST"', "body": _lua_string(json.dumps(replay_body)), "headers":
                                'wrk.headers["Content-Type"] = "application/json"\n'
                                f'wrk.headers["Idempotency-Key"] = {_lua_string(replay_key)}'},
        "get": _FIXED_LUA % {"method": '"GET"', "body": "nil", "headers": ""},
    }
    paths = {}
    for name, text in scripts.items():
        paths[name] = directory / f"{name}.lua"
        paths[name].write_text(text)
    return paths


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def parse(output: str) -> WrkResult:
    """wrk's report: ``N requests in Xs``, the 50 % and 99 % latency lines, Non-2xx and socket errors."""
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if done is None:
        raise RuntimeError(f"wrk gave no result:\n{output}")
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(requests=int(done.group(1)), seconds=_ms(done.group(2) + done.group(3)) / 1000,
                     p50_ms=_ms(p50.group(1)) if p50 else float("nan"),
                     p99_ms=_ms(p99.group(1)) if p99 else float("nan"),
                     non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
                     socket_errors=sum(map(int, errors.groups())) if errors else 0)


def run(url: str, *, seconds: float, connections: int, threads: int, script: Path | None = None,
        env: dict[str, str] | None = None) -> WrkResult:
    """One wrk run against ``url``; ``env`` reaches the Lua script through os.getenv."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (Debian's package, /usr/bin/wrk)")
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], env={**(env or {}), "THREADS": str(threads)}, capture_output=True,
                         text=True, timeout=seconds + 60)
    return parse(out.stdout + out.stderr)
