"""The execution dialect's replays are repeated in front of its app too (errand.api.replays).

A cancel of a job the key cannot see is a deterministic 404 that an Idempotency-Key stores and
replays; once replayed through the route, the same request again is answered with the same bytes
without running it.
"""

import secrets
from typing import Any

import pytest

from errand.jobs import service as jobs_service
from tests.conftest import Org

JOBS = "/api/v1/execution-jobs"


@pytest.fixture
def cancel_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    cancel_job = jobs_service.cancel_job

    async def counted(core: Any, principal: Any, job_id: str, idempotency_key: str | None = None) -> Any:
        calls.append(job_id)
        return await cancel_job(core, principal, job_id, idempotency_key)

    monkeypatch.setattr(jobs_service, "cancel_job", counted)
    return calls


async def test_a_repeated_replayed_error_is_answered_without_the_route(org: Org, cancel_calls: list[str]) -> None:
    path = f"{JOBS}/job_{secrets.token_hex(6)}/cancel"
    headers = {"Idempotency-Key": f"cancel-{secrets.token_hex(6)}"}
    first = await org.agent.post(path, headers=headers)
    replay = await org.agent.post(path, headers=headers)

    again = await org.agent.post(path, headers=headers)

    assert first.status_code == replay.status_code == again.status_code == 404, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert replay.headers["Idempotent-Replayed"] == again.headers["Idempotent-Replayed"] == "true"
    assert again.content == replay.content == first.content
    assert len(cancel_calls) == 2
