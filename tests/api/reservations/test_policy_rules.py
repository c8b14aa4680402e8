"""CUSTOM policy rules with a budget: the limits checked when a rule is saved, the short errors
in CEL terms, the CEL types of ``request``'s fields, and how a rule that fails at booking time
is answered.

Golden Gate Grill costs 65 USD per person: party size 2 → 130, 4 → 260.
"""

import logging

import httpx
import pytest

from tests.api.reservations.test_policies import (
    BOOK, POLICIES, assert_invalid, assert_violation, booking, create_policy, remaining, stranger, utc_z,  # noqa: F401
)

TEN = "[1,2,3,4,5,6,7,8,9,10]"
FOUR_DEEP = f"{TEN}.all(a, {TEN}.all(b, {TEN}.all(c, {TEN}.all(d, a + b + c + d > 0))))"
SIXTY = "[" + ",".join(["1"] * 60) + "]"
PYTHON_WORDS = ("Traceback", "celpy", "CELEvalError", "Error(", "<class", "Type(", "lark", "Exception")


def chain(terms: int, term: str) -> str:
    """``term`` for field names a, b, …, z, a1, … joined with ``||``."""
    names = [chr(ord("a") + i % 26) + (str(i // 26) if i >= 26 else "") for i in range(terms)]
    return " || ".join(term.format(name) for name in names)


async def save_rule(admin: httpx.AsyncClient, rule: str) -> httpx.Response:
    return await admin.post(POLICIES, json={"name": "Rule", "type": "CUSTOM", "config": {"rule": rule}})


def assert_clean(response: httpx.Response, limit: int = 2000) -> None:
    """A short error body with no Python in it."""
    assert len(response.content) < limit, len(response.content)
    for word in PYTHON_WORDS:
        assert word not in response.text, response.text


# --- limits at save ----------------------------------------------------------------------


async def test_nested_comprehensions_are_refused_at_save_naming_the_limit(org):
    response = await save_rule(org.admin, FOUR_DEEP)

    assert_invalid(response, "config.rule")
    message = response.json()["error"]["message"]
    assert "comprehension" in message and "4 deep" in message and "limit is 2" in message
    assert_clean(response)
    assert (await org.agent.get(POLICIES)).json()["policies"] == []


async def test_patch_to_nested_comprehensions_is_refused_and_changes_nothing(org):
    policy = await create_policy(org.admin, "CUSTOM", {"rule": "request.partySize > 8"})

    response = await org.admin.patch(f"{POLICIES}/{policy['id']}", json={"config": {"rule": FOUR_DEEP}})

    assert_invalid(response, "config.rule")
    assert "comprehension" in response.json()["error"]["message"]
    assert (await org.agent.get(POLICIES)).json()["policies"] == [policy]


@pytest.mark.parametrize(("rule", "named"), [
    ("request.city == 'Paris' || " * 40 + "false", "characters"),
    ("request.city in [" + ",".join(["'a'"] * 200) + "]", "syntax-tree nodes"),
    ("(" * 40 + "request.partySize > 8" + ")" * 40, "parse levels"),
    (f"{SIXTY}.map(a, {SIXTY}.map(b, {SIXTY})).size() > 0", "evaluation budget"),
])
async def test_rules_past_a_limit_are_refused_at_save_naming_it(org, rule, named):
    response = await save_rule(org.admin, rule)

    assert_invalid(response, "config.rule")
    assert named in response.json()["error"]["message"]
    assert_clean(response)


@pytest.mark.parametrize("rule", [
    chain(22, "request.{} > 1"),
    chain(60, "request.{} > 1"),
    chain(22, "request['{}'] > 1"),
    chain(22, "request.city > 1"),
    chain(30, "request.city>1"),
    "!" * 60 + "request.city",
])
async def test_chains_of_failing_terms_answer_a_short_error(org, rule):
    response = await save_rule(org.admin, rule)

    assert_invalid(response, "config.rule")
    assert_clean(response)


@pytest.mark.parametrize(("rule", "reason"), [
    ("request.nope > 1", "request has no field 'nope'"),
    ("request['nope'] > 1", "no such key or field: 'nope'"),
    ("request.city > 1", "no such overload"),
    ("1 / (request.partySize - 4) > 0", "divide by zero"),
    ("request.partySize + 1", "must evaluate to a bool, not int"),
    ("request.partySize >", "syntax error"),
])
async def test_a_failing_rule_is_refused_with_the_reason_in_cel_terms(org, rule, reason):
    response = await save_rule(org.admin, rule)

    assert_invalid(response, "config.rule")
    assert reason in response.json()["error"]["message"]
    assert_clean(response)


# --- the fields a rule sees --------------------------------------------------------------


async def test_fields_have_their_documented_cel_types(org, day):
    rule = ("type(request.partySize) == int && type(request.localHour) == int && type(request.weekday) == int"
            " && type(request.amountUsd) == double && type(request.pricePerPersonUsd) == double"
            " && type(request.city) == string && type(request.datetime) == string"
            " && request.amountUsd == 130 && request.partySize == 2.0")
    policy = await create_policy(org.admin, "CUSTOM", {"rule": rule}, name="Types")

    response = await org.agent.post(BOOK, json=booking(day, "19:00", 2))

    assert_violation(response, policy)
    assert "rule matched" in response.json()["error"]["message"]


async def test_weekday_counts_from_monday_as_zero_in_the_venues_time(org, day):
    policy = await create_policy(org.admin, "CUSTOM", {"rule": f"request.weekday == {day.weekday()}"},
                                 name="Not that day")
    await create_policy(org.admin, "CUSTOM", {"rule": f"request.weekday != {day.weekday()}"}, name="Other days")

    # 21:00 in San Francisco is the next day in UTC: the venue's day counts.
    response = await org.agent.post(BOOK, json={**booking(day, "21:00", 2), "datetime": utc_z(day, "21:00")})

    assert_violation(response, policy)


# --- at booking time ---------------------------------------------------------------------


async def test_rule_failing_on_a_bookings_fields_is_a_policy_violation_naming_the_reason(org, day):
    # Saved: on the sample request (party of 4) it divides by 2; a party of 2 divides by zero.
    policy = await create_policy(org.admin, "CUSTOM", {"rule": "100 / (request.partySize - 2) > 1000"},
                                 name="Fragile")

    failing = await org.agent.post(BOOK, json=booking(day, "19:00", 2))
    passing = await org.agent.post(BOOK, json=booking(day, "19:15", 3))

    assert_violation(failing, policy)
    message = failing.json()["error"]["message"]
    assert "could not be evaluated" in message and "divide by zero" in message
    assert_clean(failing)
    assert await remaining(org.agent, day, "19:00") == 30
    assert passing.status_code == 201, passing.text


async def test_rule_past_its_budget_at_booking_time_is_a_policy_violation(org, stranger, day):  # noqa: F811
    # Cheap on the sample request (a party of 4), a 60×60×60 map for a party of 2.
    rule = f"request.partySize < 3 ? {SIXTY}.map(a, {SIXTY}.map(b, {SIXTY})).size() > 0 : false"
    policy = await create_policy(org.admin, "CUSTOM", {"rule": rule}, name="Costly")

    denied = await org.agent.post(BOOK, json=booking(day, "19:00", 2))
    allowed = await org.agent.post(BOOK, json=booking(day, "19:15", 4))
    theirs = await stranger.agent.post(BOOK, json=booking(day, "19:30", 2))

    assert_violation(denied, policy)
    assert "evaluation budget of 100 ms" in denied.json()["error"]["message"]
    assert_clean(denied)
    assert allowed.status_code == 201, allowed.text
    assert theirs.status_code == 201, theirs.text


async def test_rule_on_a_job_only_field_fails_closed_on_reservations_unless_guarded(org, day):
    bare = await create_policy(org.admin, "CUSTOM", {"rule": "request.providerId == 'elsewhere'"}, name="Bare")

    denied = await org.agent.post(BOOK, json=booking(day, "19:00", 2))
    await org.admin.patch(f"{POLICIES}/{bare['id']}", json={
        "config": {"rule": "has(request.providerId) && request.providerId == 'elsewhere'"}})
    allowed = await org.agent.post(BOOK, json=booking(day, "19:15", 2))

    assert_violation(denied, bare)
    assert "no such key or field: 'providerId'" in denied.json()["error"]["message"]
    assert allowed.status_code == 201, allowed.text


async def test_a_failing_rule_in_one_organization_leaves_anothers_bookings_alone(org, stranger, day):  # noqa: F811
    await create_policy(org.admin, "CUSTOM", {"rule": "100 / (request.partySize - 2) > 1000"})
    await create_policy(org.admin, "CUSTOM", {"rule": f"{TEN}.all(a, {TEN}.all(b, a * b > 0))"})

    theirs = await stranger.agent.post(BOOK, json=booking(day, "19:00", 2))
    mine = await org.agent.post(BOOK, json=booking(day, "19:15", 2))

    assert theirs.status_code == 201, theirs.text
    assert mine.status_code == 403, mine.text


async def test_rules_leave_no_cel_lines_in_the_log(org, day, caplog):
    with caplog.at_level(logging.DEBUG):
        await create_policy(org.admin, "CUSTOM", {"rule": "request.partySize > 8 || request.city == 'Oslo'"})
        failing = await save_rule(org.admin, "request.city > 1")
        booked = await org.agent.post(BOOK, json=booking(day, "19:00", 2))

    assert failing.status_code == 400
    assert booked.status_code == 201, booked.text
    assert [r.getMessage()[:80] for r in caplog.records if r.name.startswith("celpy")] == []
