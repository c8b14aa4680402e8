"""prometheus-client's multiprocess mode as Errand uses it: processes that share
PROMETHEUS_MULTIPROC_DIR are summed by whichever one renders /metrics, and a process that
exits drops its live gauges.

Each process is a real Python process (prometheus-client picks its value store when imported,
from the environment), running Errand's own call sites.
"""

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

WORK = """
import sys
from errand.kit import metrics
for _ in range(int(sys.argv[1])):
    metrics.request_answered("GET", "/api/v1/execution-jobs/{job_id}", 200, 0.01)
metrics.policy_decided("deny")
metrics.webhook_delivered("succeeded")
metrics.task_queued("inprocess", 2)
if sys.argv[2] == "exit":
    metrics.process_exiting()
"""

RENDER = """
import sys
from errand.kit import metrics
sys.stdout.write(metrics.render(metrics.DatabaseState(up=True, jobs={"pending": 2, "completed": 5})).decode())
"""


def run(code: str, *args: str, directory: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env | {"PROMETHEUS_MULTIPROC_DIR": str(directory)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_counters_of_processes_sharing_the_directory_are_summed(tmp_path: Path) -> None:
    run(WORK, "3", "stay", directory=tmp_path)
    run(WORK, "4", "exit", directory=tmp_path)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per process

    found = values(run(RENDER, directory=tmp_path))

    route = (("method", "GET"), ("route", "/api/v1/execution-jobs/{job_id}"), ("status", "200"))
    assert found[("errand_http_requests_total", route)] == 7
    assert found[("errand_http_request_duration_seconds_count",
                  (("method", "GET"), ("route", "/api/v1/execution-jobs/{job_id}")))] == 7
    assert found[("errand_policy_decisions_total", (("outcome", "deny"),))] == 2
    assert found[("errand_webhook_deliveries_total", (("outcome", "succeeded"),))] == 2
    # The in-process queue's depth is summed over live processes only: the one that exited
    # (mark_process_dead) is gone, the other's 2 remain.
    assert found[("errand_runner_queue_depth", (("runner", "inprocess"),))] == 2
    # The database's gauges are the renderer's reading, not summed.
    assert found[("errand_jobs", (("status", "pending"),))] == 2
    assert found[("errand_database_up", ())] == 1
