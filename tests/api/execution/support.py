"""Driving execution jobs over HTTP to where they stop, and reading what they recorded.

The job tests post real jobs and let the in-process runner carry them through the sandbox
marketplace; which venue meets which obstacle is fixed by the sandbox catalog
(errand/sandbox/catalog.py). Every wait is bounded and polls; nothing asserts on timing.
"""

import asyncio
import re
from datetime import date, timedelta
from typing import Any

import httpx

JOBS = "/api/v1/execution-jobs"
TERMINAL = {"paused_payment", "completed", "no_availability", "needs_login", "captcha", "error", "cancelled"}
EVENT_TYPES = {
    "job_created", "job_started", "step_started", "paused_payment", "job_completed", "job_failed", "job_aborted",
    "step_attempt", "action_allowed", "action_denied", "time_adjusted", "venue_switched", "provider_fallback",
    "awaiting_approval", "payment_completed", "human_takeover", "hold_expired",
}
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
DEADLINE_SECONDS = 60.0
POLL_SECONDS = 0.1
# Every request to sandbox-tables takes this long on the slow server (the ``slow_url``
# fixture): a job there stays `running` for at least two of them (search, then checkout).
SLOW_SECONDS = 3.0

PROFILE = {"first_name": "Alex", "last_name": "Traveler", "email": "alex.traveler@example.com",
           "phone": "+15551234567"}
FLYER = {**PROFILE, "dob": "1990-01-01", "passport_number": "X1234567", "passport_country": "US"}


# --- request bodies, one builder per scenario ----------------------------------------------


def job(scenario: str, params: dict[str, Any], consent: dict[str, Any] | None = None,
        profile: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"request": {"scenario": scenario, "params": params},
                            "profile": profile or (FLYER if scenario == "flight" else PROFILE)}
    if consent is not None:
        body["consent"] = consent
    return body



def restaurant_job(day: date, **overrides: Any) -> dict[str, Any]:
    """A lunch for two at Golden Gate Grill with an inline profile, as REST's body or MCP's arguments;
    ``overrides`` replace top-level fields (``consent``, ``clientMetadata``, ``request``…)."""
    body: dict[str, Any] = {
        "request": {"scenario": "restaurant", "params": {
            "restaurant_name": "Golden Gate Grill", "city": "San Francisco", "date": day.isoformat(),
            "time": "12:00", "covers": 2}},
        "profile": {"first_name": "Alex", "last_name": "Traveler", "email": "alex@example.com",
                    "phone": "+15551234567"},
    }
    body.update(overrides)
    return body

def restaurant(day: date, name: str = "Le Bernardin", time: str = "19:00", covers: int = 2,
               consent: dict[str, Any] | None = None, city: str = "New York", **params: Any) -> dict[str, Any]:
    return job("restaurant", {"restaurant_name": name, "city": city, "date": str(day), "time": time,
                              "covers": covers, **params}, consent)


def hotel(day: date, name: str = "The Plaza", nights: int = 1, adults: int = 2, city: str = "New York",
          consent: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    return job("hotel", {"hotel_name": name, "city": city, "checkin": str(day),
                         "checkout": str(day + timedelta(days=nights)), "adults": adults, **params}, consent)


def flight(day: date, origin: str = "New York", dest: str = "San Francisco", passengers: int = 1,
           consent: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    return job("flight", {"origin": origin, "dest": dest, "date": str(day), "passengers": passengers, **params},
               consent)


def activity(day: date, name: str = "Hamilton", city: str = "New York", tickets: int = 2,
             consent: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    return job("activity", {"event_name": name, "city": city, "event_date": str(playing(day)),
                            "num_tickets": tickets, **params}, consent)


def playing(day: date) -> date:
    """The first date from ``day`` on a Wednesday, Friday or Saturday: every sandbox event plays then."""
    while day.weekday() not in (2, 4, 5):
        day += timedelta(days=1)
    return day


def monday(day: date) -> date:
    while day.weekday() != 0:
        day += timedelta(days=1)
    return day


# --- running jobs --------------------------------------------------------------------------


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post(JOBS, json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["jobId"])


async def wait(client: httpx.AsyncClient, job_id: str, until: set[str] = TERMINAL,
               deadline_seconds: float = DEADLINE_SECONDS) -> dict[str, Any]:
    """Poll the job until its status is in ``until``; fail after ``deadline_seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    while True:
        response = await client.get(f"{JOBS}/{job_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in until:
            return body
        assert loop.time() < deadline, f"job {job_id} still {body['status']} after {deadline_seconds:g} s: {body}"
        await asyncio.sleep(POLL_SECONDS)


async def audit(client: httpx.AsyncClient, job_id: str) -> list[dict[str, Any]]:
    """The job's events, each checked for the contract's fields."""
    response = await client.get(f"{JOBS}/{job_id}/audit")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["jobId"] == job_id and body["count"] == len(body["events"])
    for event in body["events"]:
        assert event["jobId"] == job_id, event
        assert isinstance(event["stepIndex"], int) and event["stepIndex"] >= 0, event
        assert event["type"] in EVENT_TYPES, event
        assert ISO_UTC.match(event["timestamp"]), event
        assert isinstance(event["message"], str) and event["message"], event
    return body["events"]


async def run(client: httpx.AsyncClient, body: dict[str, Any],
              until: set[str] = TERMINAL) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Post a job, wait until it stops, and return it with its audit events."""
    job_id = await post(client, body)
    done = await wait(client, job_id, until)
    return done, await audit(client, job_id)


async def run_all(client: httpx.AsyncClient, bodies: list[dict[str, Any]],
                  until: set[str] = TERMINAL) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Several jobs at once, in the order given."""
    return list(await asyncio.gather(*(run(client, b, until) for b in bodies)))


# --- reading the audit ---------------------------------------------------------------------


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def of_type(events: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == type_]


def one(events: list[dict[str, Any]], type_: str) -> dict[str, Any]:
    found = of_type(events, type_)
    assert len(found) == 1, (type_, types(events))
    return found[0]


def tried(events: list[dict[str, Any]]) -> list[str]:
    """The providers the chain tried, in order."""
    return [e["providerId"] for e in of_type(events, "step_started")]


def fallbacks(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(from, to, reason) of each provider the chain tried and left; ``to`` is None for the last one.

    A provider left out before the chain starts because it cannot run on this server (a
    browser provider without a browser) also records a ``provider_fallback``; it is no step.
    """
    return [(e["providerId"], e.get("nextProviderId"), e["reason"]) for e in of_type(events, "provider_fallback")
            if e["reason"] != "browser_unavailable"]


async def metrics(client: httpx.AsyncClient, provider_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/metrics/providers/{provider_id}")
    assert response.status_code == 200, response.text
    return response.json()
