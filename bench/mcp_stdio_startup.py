"""Time ``errand mcp`` from process start to its answer to ``initialize``, N times, and print the median.

    ERRAND_API_KEY="$KEY" .venv/bin/python bench/mcp_stdio_startup.py -n 7

The command runs with this environment (ERRAND_DATABASE_URL / ERRAND_DATA_DIR name the
database the key lives in), as a desktop MCP client would start it: a fresh process per run,
so each figure includes the interpreter, the imports, the key check and the handshake.
On Linux it also prints the CPU time the process had used when it answered (from
/proc/PID/stat), which other work on a busy machine does not inflate as it does wall time.
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


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds process ``pid`` has used so far; None where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def once() -> tuple[float, float | None]:
    """Wall seconds from spawning ``errand mcp`` to reading its answer to ``initialize``, and the
    CPU seconds it had used by then."""
    started = time.perf_counter()
    proc = subprocess.Popen([ERRAND, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(INITIALIZE)
        proc.stdin.flush()
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(proc.pid)
        if '"id":1' not in line.replace(" ", ""):
            raise SystemExit(f"errand mcp did not answer initialize: {line!r} (is ERRAND_API_KEY valid?)")
        return elapsed, cpu
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5, help="runs (default 5)")
    args = parser.parse_args()
    if not os.environ.get("ERRAND_API_KEY"):
        raise SystemExit("set ERRAND_API_KEY (errand create-api-key mints one)")
    runs = [once() for _ in range(args.n)]
    walls = [wall for wall, _ in runs]
    cpus = [cpu for _, cpu in runs if cpu is not None]
    print("wall:", " ".join(f"{t:.2f}" for t in walls))
    print(f"median start-up to initialize: {statistics.median(walls):.2f} s over {args.n} runs"
          + (f" (CPU {statistics.median(cpus):.2f} s)" if cpus else ""))


if __name__ == "__main__":
    main()
