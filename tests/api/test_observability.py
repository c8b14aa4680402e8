"""Operators see inside: /metrics, /healthz and /readyz, request ids, traceparent, Server-Timing.

Through HTTP against the real app (tests/conftest.py's server, or one of a test's own), after
real bookings and jobs; the families are read with prometheus-client's own parser.
"""

import asyncio
import re
import secrets
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from errand.kit.config import Settings
from errand.kit.migrations import upgrade_queue_schema, upgrade_to_head
from tests.api.execution.support import JOBS, restaurant_job, wait
from tests.conftest import (PG_URL, SECRET_KEY, Org, Server, create_pg_database, drop_pg_database, free_port,
                            running)

TRACE_ID = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family: Any, name: str | None = None) -> list[Any]:
    return [s for s in family.samples if name is None or s.name == name]


async def scrape(client: httpx.AsyncClient, **kwargs: Any) -> dict[str, Any]:
    response = await client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return families(response.text)


async def test_metrics_after_a_booking_and_a_job_name_route_templates_not_ids(
        server: Server, org: Org, anon: httpx.AsyncClient, booking_request: Any, day: date) -> None:
    booked = await org.agent.post("/api/v1/agent/restaurant/book", json=booking_request(),
                                  headers={"Idempotency-Key": f"obs-{uuid.uuid4()}"})
    assert booked.status_code == 201, booked.text
    again = await org.agent.post("/api/v1/agent/restaurant/book", json=booking_request(),
                                 headers={"Idempotency-Key": booked.request.headers["Idempotency-Key"]})
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    created = await org.agent.post(JOBS, json=restaurant_job(day))
    assert created.status_code == 202, created.text
    job_id = created.json()["jobId"]
    await wait(org.agent, job_id)
    assert (await org.agent.get(f"{JOBS}/{job_id}")).status_code == 200
    assert (await anon.get(f"/no/such/path/{secrets.token_hex(4)}")).status_code == 404

    found = await scrape(anon)

    requests = found["errand_http_requests"]
    routes = {(s.labels["method"], s.labels["route"], s.labels["status"]) for s in samples(requests,
                                                                                         "errand_http_requests_total")}
    assert ("POST", "/api/v1/agent/restaurant/book", "201") in routes
    assert ("POST", JOBS, "202") in routes
    assert ("GET", f"{JOBS}/{{job_id}}", "200") in routes
    assert ("GET", "unmatched", "404") in routes
    assert not any(job_id in route or "/no/such" in route for _, route, _ in routes)  # never a raw path
    durations = found["errand_http_request_duration_seconds"]
    assert any(s.labels.get("route") == "/api/v1/agent/restaurant/book"
               for s in samples(durations, "errand_http_request_duration_seconds_count"))

    assert sum(s.value for s in samples(found["errand_idempotency_replays"])) >= 1
    decisions = {s.labels["outcome"] for s in samples(found["errand_policy_decisions"],
                                                      "errand_policy_decisions_total")}
    assert "allow" in decisions
    providers = samples(found["errand_provider_calls"], "errand_provider_calls_total")
    assert any(s.labels["provider"].startswith("sandbox-") and s.labels["outcome"] == "ok" for s in providers)
    assert samples(found["errand_provider_call_duration_seconds"], "errand_provider_call_duration_seconds_count")
    runs = samples(found["errand_task_runs"], "errand_task_runs_total")
    assert any(s.labels["task"] == "errand.run_job" for s in runs)
    assert samples(found["errand_task_pickup_lag_seconds"], "errand_task_pickup_lag_seconds_count")
    assert "errand_runner_queue_depth" in found
    assert found["errand_webhook_deliveries"].type == "counter"

    # Read from the database when scraped.
    assert samples(found["errand_database_up"])[0].value == 1
    jobs = {s.labels["status"]: s.value for s in samples(found["errand_jobs"])}
    assert sum(jobs.values()) >= 1
    assert samples(found["errand_approvals_pending"])[0].value >= 0
    assert samples(found["errand_jobs_oldest_pending_age_seconds"])[0].value >= 0


async def test_server_timing_on_booking_and_job_creation_gives_errands_own_time(
        org: Org, booking_request: Any, day: date) -> None:
    for response in (await org.agent.post("/api/v1/agent/restaurant/book", json=booking_request("20:00")),
                     await org.agent.post(JOBS, json=restaurant_job(day))):
        assert response.status_code < 300, response.text
        timing = response.headers["server-timing"]
        phases = dict(re.findall(r"(\w+);dur=([\d.]+)", timing))
        assert {"auth", "errand", "total"} <= set(phases), timing
        assert float(phases["errand"]) <= float(phases["total"])
    # The booking's provider call is timed apart and left out of Errand's own time.
    booked = dict(re.findall(r"(\w+);dur=([\d.]+)", (await org.agent.post(
        "/api/v1/agent/restaurant/book", json=booking_request("21:00"))).headers["server-timing"]))
    assert "provider" in booked
    # Each figure is rounded to 0.01 ms on its own: three roundings apart at most 0.015 ms.
    assert float(booked["errand"]) <= float(booked["total"]) - float(booked["provider"]) + 0.02


async def test_request_id_and_traceparent_are_continued_or_made(anon: httpx.AsyncClient, org: Org) -> None:
    trace_id = secrets.token_hex(16)
    sent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    response = await anon.get("/healthz", headers={"traceparent": sent, "X-Request-Id": "req-abc.123"})
    assert response.headers["x-request-id"] == "req-abc.123"
    answered = TRACE_ID.match(response.headers["traceparent"])
    assert answered and answered.group(1) == trace_id

    # A dialect's path too (handed straight to its app), and an error answer.
    response = await org.agent.get(f"{JOBS}/job_{secrets.token_hex(8)}", headers={"traceparent": sent})
    assert response.status_code == 404
    assert TRACE_ID.match(response.headers["traceparent"]).group(1) == trace_id  # type: ignore[union-attr]

    # Hostile or malformed values are replaced, never echoed.
    for bad_id, bad_parent in [("x" * 200, "00-" + "0" * 32 + "-" + "1" * 16 + "-01"),
                               ("a b\tc", "garbage"), ("<script>", f"ff-{trace_id}-{'1' * 16}-01")]:
        response = await anon.get("/healthz", headers={"X-Request-Id": bad_id, "traceparent": bad_parent})
        assert re.fullmatch(r"[0-9a-f]{24}", response.headers["x-request-id"])
        made = TRACE_ID.match(response.headers["traceparent"])
        assert made and made.group(1) not in (trace_id, "0" * 32)
    first, second = (await anon.get("/healthz"), await anon.get("/healthz"))
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert first.headers["traceparent"][3:35] != second.headers["traceparent"][3:35]


async def test_healthz_and_readyz_answer_get_and_head(anon: httpx.AsyncClient, org: Org) -> None:
    for path in ("/healthz", "/readyz"):
        head = await anon.head(path)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["traceparent"]
    ready = (await anon.get("/readyz")).json()
    assert ready["status"] == "ready" and ready["failed"] == []
    assert ready["checks"]["database"]["ok"] and ready["checks"]["migrations"]["ok"]
    assert ready["checks"]["migrations"]["current"] == ready["checks"]["migrations"]["head"]
    assert ready["checks"]["runner"] == {"ok": True, "runner": "inprocess"}
    # No key needed, and never refused by a key's rate limit.
    for _ in range(3):
        assert (await org.agent.get("/readyz")).status_code == 200


async def test_readyz_is_503_when_the_database_is_unreachable_and_metrics_need_the_token(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    token = secrets.token_urlsafe(16)
    settings = Settings(data_dir=tmp_path, database_url=f"postgresql+asyncpg://errand@127.0.0.1:{closed}/errand",
                        port=free_port(), secret_key=SECRET_KEY, metrics_token=token,
                        readiness_timeout_seconds=1.0)
    async with running(settings) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["retry-after"].isdigit()
        body = response.json()
        assert body["status"] == "unavailable"
        assert {"database", "migrations"} <= set(body["failed"])
        assert body["checks"]["database"]["ok"] is False
        head = await client.head("/readyz")
        assert head.status_code == 503 and head.content == b""
        assert (await client.get("/healthz")).status_code == 200  # the process is up all the same
        assert (await client.head("/healthz")).status_code == 200

        refused = await client.get("/metrics")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
        found = await scrape(client, headers={"Authorization": f"Bearer {token}"})
        assert samples(found["errand_database_up"])[0].value == 0
        assert "errand_jobs" not in found


async def test_readyz_is_503_when_migrations_are_not_at_head(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'errand.db'}"
    settings = Settings(data_dir=tmp_path, database_url=url, port=free_port(), secret_key=SECRET_KEY)
    async with running(settings) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["failed"] == ["migrations"]
        assert body["checks"]["database"]["ok"] is True and body["checks"]["migrations"]["current"] == []
        await upgrade_to_head(url)
        assert (await client.get("/readyz")).status_code == 200


async def test_unknown_methods_and_paths_do_not_grow_the_label_sets(anon: httpx.AsyncClient) -> None:
    for i in range(3):
        await anon.request(f"BREW{i}", f"/api/v1/execution-jobs/job_{secrets.token_hex(6)}")
        await anon.get(f"/{secrets.token_hex(8)}")
    found = await scrape(anon)
    labels = [s.labels for s in samples(found["errand_http_requests"], "errand_http_requests_total")]
    assert not any(label["method"].startswith("BREW") for label in labels)
    assert any(label["method"] == "OTHER" and label["route"] in ("unmatched", f"{JOBS}/{{job_id}}") for label in labels)
    assert not any(re.search(r"job_[0-9a-f]{12}|/[0-9a-f]{16}", label["route"]) for label in labels)


async def test_procrastinate_runner_is_checked_and_its_queue_measured(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("ERRAND_TEST_POSTGRES_URL is not set")
    url, name = await create_pg_database(PG_URL)
    try:
        await upgrade_to_head(url)
        await upgrade_queue_schema(url)
        settings = Settings(data_dir=tmp_path, database_url=url, port=free_port(), secret_key=SECRET_KEY,
                            runner="procrastinate")
        async with running(settings) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            for _ in range(100):  # the worker starts in the background
                ready = await client.get("/readyz")
                if ready.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert ready.status_code == 200, ready.text
            runner = ready.json()["checks"]["runner"]
            assert runner["ok"] is True and runner["runner"] == "procrastinate"
            found = await scrape(client)
            assert "errand_queue_depth" in found and "errand_queue_oldest_age_seconds" in found
            assert samples(found["errand_database_up"])[0].value == 1
    finally:
        await drop_pg_database(PG_URL, name)
