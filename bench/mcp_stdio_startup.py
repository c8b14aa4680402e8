"""Time ``errand mcp`` from process start to its answer to ``initialize``, N times, and print the median.

    ERRAND_API_KEY="$KEY" .venv/bin/python bench/mcp_stdio_startup.py -n 7

The command runs with this environment (ERRAND_DATABASE_URL / ERRAND_DATA_DIR name the
database the key lives in), as a desktop MCP client would start it: a fresh process per run,
so each figure includes the interpreter, the imports, the key check and the handshake.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ERRAND = str(Path(sys.executable).parent / "errand")
INITIALIZE = json.dumps({
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
}) + "\n"


def once() -> float:
    """Seconds from spawning ``errand mcp`` to reading its answer to ``initialize``."""
    started = time.perf_counter()
    proc = subprocess.Popen([ERRAND, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(INITIALIZE)
        proc.stdin.flush()
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - started
        if '"id":1' not in line.replace(" ", ""):
            raise SystemExit(f"errand mcp did not answer initialize: {line!r} (is ERRAND_API_KEY valid?)")
        return elapsed
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5, help="runs (default 5)")
    args = parser.parse_args()
    if not os.environ.get("ERRAND_API_KEY"):
        raise SystemExit("set ERRAND_API_KEY (errand create-api-key mints one)")
    times = [once() for _ in range(args.n)]
    print(" ".join(f"{t:.2f}" for t in times))
    print(f"median start-up to initialize: {statistics.median(times):.2f} s over {args.n} runs")


if __name__ == "__main__":
    main()
