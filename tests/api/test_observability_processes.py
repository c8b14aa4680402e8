"""Observability of real ``errand serve`` processes: metrics summed across processes, traces
exported over OTLP/HTTP to a receiver this test runs, JSON log lines without keys or personal data.

Two servers share one PROMETHEUS_MULTIPROC_DIR (each with its own SQLite data dir), as two
processes of one deployment share a machine; each exports its spans to the receiver, and each
writes its logs to standard error.
"""

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.execution.support import JOBS, restaurant_job, wait
from tests.conftest import SECRET_KEY, free_port

ERRAND = str(Path(sys.executable).parent / "errand")
KEY = re.compile(r"live agent key: (ar_live_[A-Za-z0-9_-]{32,})")


@dataclass
class Receiver:
    """An OTLP/HTTP trace receiver (protobuf ``POST /v1/traces``): the spans it was sent."""

    url: str
    spans: list[dict[str, Any]] = field(default_factory=list)

    def named(self, trace_id: str) -> dict[str, str]:
        """span id → name of every span of ``trace_id`` received so far."""
        return {s["span_id"]: s["name"] for s in self.spans if s["trace_id"] == trace_id}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    got = Receiver(f"http://127.0.0.1:{port}")

    async def traces(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    got.spans.append({"trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                                      "parent": span.parent_span_id.hex(), "name": span.name,
                                      "service": resource.get("service.name")})
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield got
    finally:
        await runner.cleanup()


@dataclass
class Process:
    base_url: str
    key: str
    stderr: Path
    proc: subprocess.Popen[bytes]

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stderr.read_text().splitlines() if line.startswith("{")]


async def start(tmp_path: Path, name: str, env: dict[str, str]) -> Process:
    port = free_port()
    (tmp_path / name).mkdir()
    out, err = tmp_path / name / "stdout", tmp_path / name / "stderr"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ERRAND_", "OTEL_", "PROMETHEUS_"))}
    proc = subprocess.Popen([ERRAND, "serve", "--port", str(port)], cwd=tmp_path / name,
                            env=environ | env | {"ERRAND_DATA_DIR": str(tmp_path / name / "var"), "COLUMNS": "200", "PYTHONUNBUFFERED": "1",
                                                 "ERRAND_SECRET_KEY": SECRET_KEY},
                            stdout=out.open("wb"), stderr=err.open("wb"))
    base_url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base_url) as client:
        for _ in range(600):
            assert proc.poll() is None, err.read_text()
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    found = KEY.search(out.read_text() + err.read_text())  # the first start's keys, on the console
    assert found, err.read_text()
    return Process(base_url, found.group(1), err, proc)


async def stop(process: Process) -> None:
    if process.proc.poll() is None:
        process.proc.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(process.proc.wait, 30)
        except subprocess.TimeoutExpired:
            process.proc.kill()


@pytest.fixture
async def pair(tmp_path: Path, receiver: Receiver) -> AsyncIterator[tuple[Process, Process, Path]]:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared), "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
           "OTEL_BSP_SCHEDULE_DELAY": "100", "ERRAND_LOG_FORMAT": "json"}
    first = await start(tmp_path, "a", env)
    try:
        second = await start(tmp_path, "b", env)
        try:
            yield first, second, shared
        finally:
            await stop(second)
    finally:
        await stop(first)


def counted(text: str, family: str, **labels: str) -> float:
    for metric in text_string_to_metric_families(text):
        if metric.name == family:
            return sum(s.value for s in metric.samples if s.name == family + "_total"
                       and all(s.labels.get(k) == v for k, v in labels.items()))
    return 0.0


async def spans_of(receiver: Receiver, trace_id: str, *names: str) -> dict[str, str]:
    """The trace's spans once every one of ``names`` has arrived (the exporter batches every 100 ms)."""
    for _ in range(100):
        spans = receiver.named(trace_id)
        if set(names) <= set(spans.values()):
            return spans
        await asyncio.sleep(0.1)
    raise AssertionError(f"spans {names} of trace {trace_id} never came; got {receiver.named(trace_id)}")


async def test_two_processes_metrics_traces_and_logs(pair: tuple[Process, Process, Path], receiver: Receiver) -> None:
    first, second, shared = pair
    async with (httpx.AsyncClient(base_url=first.base_url, timeout=30,
                                  headers={"Authorization": f"Bearer {first.key}"}) as a,
                httpx.AsyncClient(base_url=second.base_url, timeout=30) as b):
        # Metrics: each process counts its own requests; either one's /metrics sums both.
        for _ in range(3):
            assert (await a.get("/readyz")).status_code == 200
        for _ in range(2):
            assert (await b.head("/readyz")).status_code == 200
        assert list(shared.glob("*.db")), "prometheus-client wrote no multiprocess files"
        text = (await a.get("/metrics")).text
        assert counted(text, "errand_http_requests", method="GET", route="/readyz", status="200") == 3
        assert counted(text, "errand_http_requests", method="HEAD", route="/readyz", status="200") == 2
        assert counted((await b.get("/metrics")).text, "errand_http_requests", route="/readyz") == 5

        # Traces: the caller's traceparent is continued; the request's span and its phases arrive.
        trace_id = secrets.token_hex(16)
        email = f"jane.{secrets.token_hex(3)}@example.com"
        booked = await a.post("/api/v1/agent/restaurant/book", headers={
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01", "X-Request-Id": "obs-book-1",
            "Idempotency-Key": f"obs-{secrets.token_hex(4)}"}, json={
            "restaurantName": "Golden Gate Grill", "city": "San Francisco", "partySize": 2,
            "datetime": "2027-09-09T19:00:00", "customer": {"name": "Jane Quinlan-Doe", "email": email,
                                                             "phone": "+15551234567"}})
        assert booked.status_code == 201, booked.text
        assert booked.headers["traceparent"].split("-")[1] == trace_id
        spans = await spans_of(receiver, trace_id, "POST /api/v1/agent/restaurant/book", "auth", "idempotency",
                               "policy", "provider", "provider.call")
        assert any(name.startswith("db ") for name in spans.values()), spans
        request_span = next(s for s in receiver.spans if s["trace_id"] == trace_id
                            and s["name"] == "POST /api/v1/agent/restaurant/book")
        assert request_span["service"] == "errand"
        assert {s["parent"] for s in receiver.spans if s["trace_id"] == trace_id and s["name"] == "auth"} \
            <= set(spans), "auth is a child within the request's trace"

        # A job run is a trace of its own, with its provider calls.
        created = await a.post(JOBS, json=restaurant_job(__import__("datetime").date(2027, 9, 10)))
        assert created.status_code == 202, created.text
        await wait(a, created.json()["jobId"])
        for _ in range(100):
            if any(s["name"] == "task errand.run_job" for s in receiver.spans):
                break
            await asyncio.sleep(0.1)
        run = next(s for s in receiver.spans if s["name"] == "task errand.run_job")
        assert {"provider", "provider.call", "policy.evaluate"} <= set(receiver.named(run["trace_id"]).values())

    # Logs: one JSON access line per request, naming the request, trace, organization and key
    # prefix; never the key, the e-mail, the phone or the name from the body.
    await stop(first)
    lines = first.logs()
    access = [line for line in lines if line.get("event") == "request"
              and line.get("route") == "/api/v1/agent/restaurant/book"]
    assert len(access) == 1, lines
    line = access[0]
    assert line["request_id"] == "obs-book-1" and line["trace_id"] == trace_id
    assert line["organization_id"].startswith("org_") and line["key_prefix"] == first.key[:12]
    assert line["method"] == "POST" and line["status"] == 201 and line["duration_ms"] > 0
    # Every log line (the console's first-start message, which shows the demo keys once, aside).
    raw = "\n".join(line for line in first.stderr.read_text().splitlines() if line.startswith("{"))
    assert len(raw) > 1000
    for secret in (first.key, email, "+15551234567", "Quinlan"):
        assert secret not in raw
