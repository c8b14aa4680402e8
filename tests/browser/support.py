"""Jobs for the web-only providers, run over HTTP to where they stop, and what they left behind.

Which venue meets which obstacle at which site is the sandbox sites' contract
(docs/sandbox-web.md, "Test venues"). Every wait is bounded and polls.
"""

import asyncio
import os
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.api.execution import support as execution_support
from tests.api.execution.support import JOBS, TERMINAL, post

CHROMIUM = "/usr/bin/chromium"
HAS_CHROMIUM = os.access(CHROMIUM, os.X_OK)
needs_chromium = pytest.mark.skipif(
    not HAS_CHROMIUM, reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium to run the browser tests")

DEADLINE_SECONDS = 90.0
PROFILE = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+15551234567"}
FLYER = {**PROFILE, "dob": "1990-12-10", "passport_number": "X1234567", "passport_country": "GB"}
WEB = {"restaurant": "web-tables", "hotel": "web-stays", "flight": "web-air", "activity": "web-tickets"}
# The test card numbers of the sandbox checkout page.
PAYS, DECLINED = "4242 4242 4242 4242", "4000 0000 0000 0002"


def playing(day: date) -> date:
    """The first Wednesday, Friday or Saturday from ``day``: every sandbox event plays then."""
    while day.weekday() not in (2, 4, 5):
        day += timedelta(days=1)
    return day


def job(scenario: str, day: date, venue: str | None = None, *, providers: list[str] | None = None,
        **consent: Any) -> dict[str, Any]:
    """A job body for ``scenario`` on ``day`` at ``venue`` (a flight: ``"origin-dest"``)."""
    if scenario == "restaurant":
        params: dict[str, Any] = {"restaurant_name": venue or "Carbone", "city": "New York", "date": str(day),
                                  "time": "19:00", "covers": 2}
    elif scenario == "hotel":
        name, _, city = (venue or "The Plaza/New York").partition("/")
        params = {"hotel_name": name, "city": city or "New York", "checkin": str(day),
                  "checkout": str(day + timedelta(days=1)), "adults": 2}
    elif scenario == "flight":
        origin, _, dest = (venue or "New York-San Francisco").partition("-")
        params = {"origin": origin, "dest": dest, "date": str(day), "passengers": 1}
    else:
        name, _, city = (venue or "Hamilton/New York").partition("/")
        params = {"event_name": name, "city": city or "New York", "event_date": str(playing(day)), "num_tickets": 2}
    body: dict[str, Any] = {"request": {"scenario": scenario, "params": params},
                            "profile": FLYER if scenario == "flight" else PROFILE}
    consent = {"allowVenueSwitch": False, **consent}
    if providers is not None:
        consent["allowedProviders"] = providers
    body["consent"] = consent
    return body


async def wait(client: httpx.AsyncClient, job_id: str, until: set[str] = TERMINAL) -> dict[str, Any]:
    """As the execution tests poll, with the longer deadline a browser job needs."""
    return await execution_support.wait(client, job_id, until, deadline_seconds=DEADLINE_SECONDS)


async def audit(client: httpx.AsyncClient, job_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"{JOBS}/{job_id}/audit")
    assert response.status_code == 200, response.text
    return response.json()["events"]


async def run(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    job_id = await post(client, body)
    done = await wait(client, job_id)
    return done, await audit(client, job_id)


async def run_all(client: httpx.AsyncClient,
                  bodies: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    return list(await asyncio.gather(*(run(client, b) for b in bodies)))


async def eventually(client: httpx.AsyncClient, job_id: str, type_: str, seconds: float = 15.0) -> dict[str, Any]:
    """The job's first ``type_`` event, waiting for it (provider events arrive in the background)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        found = of_type(await audit(client, job_id), type_)
        if found:
            return found[0]
        assert loop.time() < deadline, f"no {type_} event on job {job_id} after {seconds:g} s"
        await asyncio.sleep(0.2)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def of_type(events: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == type_]


def fallbacks(events: list[dict[str, Any]]) -> list[tuple[str, str | None, str]]:
    return [(e["providerId"], e.get("nextProviderId"), e["reason"]) for e in of_type(events, "provider_fallback")]


def tried(events: list[dict[str, Any]]) -> list[str]:
    return [e["providerId"] for e in of_type(events, "step_started")]


async def metrics(client: httpx.AsyncClient, provider_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/metrics/providers/{provider_id}")
    assert response.status_code == 200, response.text
    return response.json()
