"""Hostile input to the agents routes: always the dialect's error body, never a 500."""

import json

import pytest

from tests.api.automations.support import AGENTS, assert_error, create, definition
from tests.conftest import Org


@pytest.mark.parametrize(("raw", "code"), [
    (b'{"name": "a\\u0000b"}', "invalid_request"),
    (b'{"name": "x", "steps": [{"type": "wait", "id": "w", "duration": "1m", "x": NaN}]}', "invalid_request"),
    (b'{"name": "x", "execution_limit": {"max_per_hour": 1e999}}', "invalid_request"),
    (b'{"name": "x", "name": "y"}', "invalid_request"),
    (b'{"name": "x", "client_scope": "all", "clientScope": "all"}', "invalid_request"),
    (b"[" * 40 + b"]" * 40, "invalid_json"),
    (b'{"name": ', "invalid_json"),
    (b"\xff\xfe", "invalid_json"),
])
async def test_malformed_bodies_are_refused_in_the_dialects_shape(org: Org, raw: bytes, code: str) -> None:
    response = await org.admin.post(AGENTS, content=raw, headers={"content-type": "application/json"})
    assert_error(response, 400, code)


@pytest.mark.parametrize("body", [
    [definition()], "agent", 42, None,
    {**definition(), "steps": [{"type": "wait", "id": "w", "duration": "1m"}] * 51},
    {**definition(), "name": "x" * 201},
    {**definition(), "steps": [{"type": "notification", "id": "n", "channel": "sms", "recipients": ["x"],
                                "body": "b" * 4001}]},
    {**definition(), "steps": [{"type": "ai_reason", "id": "a", "model": "quick", "prompt": "p",
                                "output_schema": "not an object"}]},
    {**definition(), "steps": [{"type": "wait", "id": "1bad id", "duration": "1m"}]},
    {**definition(), "trigger": {"type": "cron", "source_product": "psa", "event_type": "x"}},
    {**definition(), "conditions": {"field": "a"}},
    {**definition(), "name": "   "},
    {**definition(), "description": 7},
    {**definition(), "steps": [{"type": "approval_gate", "id": "g", "message": "m", "timeout_minutes": "5"}]},
    {**definition(), "steps": [{"type": "approval_gate", "id": "g", "message": "m", "timeout_minutes": 5.5}]},
    {**definition(), "execution_limit": {"max_per_hour": True}},
])
async def test_definitions_of_the_wrong_shape_are_invalid_agent_config(org: Org, body: object) -> None:
    response = await org.admin.post(AGENTS, content=json.dumps(body), headers={"content-type": "application/json"})
    assert_error(response, 400, "invalid_agent_config")


async def test_an_empty_body_is_invalid_agent_config(org: Org) -> None:
    assert_error(await org.admin.post(AGENTS), 400, "invalid_agent_config")


async def test_a_huge_body_is_413(org: Org) -> None:
    response = await org.admin.post(AGENTS, content=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}',
                                    headers={"content-type": "application/json"})
    assert_error(response, 413, "payload_too_large")


async def test_hostile_ids_and_queries_are_refused_or_not_found(org: Org) -> None:
    assert_error(await org.admin.get(f"{AGENTS}/%00"), 400, "invalid_request")
    assert_error(await org.admin.get(f"{AGENTS}/" + "a" * 500), 404, "agent_not_found")
    assert_error(await org.admin.get(f"{AGENTS}/agent_%E2%80%AE"), 404, "agent_not_found")
    assert_error(await org.admin.get(AGENTS, params={"category": "x" * 41}), 400, "invalid_request")
    assert_error(await org.admin.get(AGENTS, params={"type": "robot"}), 400, "invalid_request")


async def test_a_deeply_nested_filter_value_within_the_limit_is_kept(org: Org) -> None:
    value: object = "leaf"
    for _ in range(20):
        value = [value]
    agent = await create(org.admin, conditions=[{"field": "a", "operator": "eq", "value": value}])
    assert agent["conditions"][0]["value"] == value


async def test_a_put_without_a_body_changes_nothing_and_is_refused(org: Org) -> None:
    agent = await create(org.admin)
    body = assert_error(await org.admin.put(f"{AGENTS}/{agent['id']}"), 400, "invalid_agent_config")
    assert body["details"] == [{"field": "body", "message": "a JSON object is required"}]
    assert_error(await org.admin.post(f"{AGENTS}/{agent['id']}/clone", content=b"null",
                                     headers={"content-type": "application/json"}), 400, "invalid_agent_config")
