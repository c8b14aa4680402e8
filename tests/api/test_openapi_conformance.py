"""schemathesis against each dialect's OpenAPI document, on the embedded default (SQLite, in-process).

The real server runs with an admin key of its own organization; schemathesis reads each document
from the server, generates requests from it (examples, coverage, fuzzing and stateful phases) and
runs every check: no 5xx, only documented statuses, content types, headers and bodies, invalid
data refused, valid data accepted, 405 with ``Allow`` for undocumented methods, auth enforced.
The same command works against any running Errand (README, development section).
"""

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from errand.identity import service as identity_service
from errand.kit.config import Settings
from errand.kit.db import Database
from errand.kit.migrations import upgrade_to_head
from tests.conftest import SECRET_KEY, free_port, running

DOCUMENTS = {
    "root": "/openapi.json",
    "execution": "/api/v1/execution-jobs/openapi.json",
    "reservations": "/api/v1/agent/openapi.json",
    "automations": "/api/openapi.json",
}
MAX_EXAMPLES = 15

# Every check runs (schemathesis's default), except as the two lists below say.
# Rules JSON Schema cannot state, which the server enforces with a 400 naming the rule: data that
# fits the schema but breaks one of these is refused rightly, so "valid data is accepted" does not
# hold for these operations (every other check still runs on them).
BEYOND_JSON_SCHEMA = {
    "PUT /api/agents/{agent_id}": "`\"status\": \"active\"` checks the definition's meaning: step ids unique, "
                                  "templates that parse and name earlier steps, a branch condition that compiles "
                                  "as CEL, an output schema that is a JSON Schema",
    "GET /api/v1/execution-jobs": "`cursor` is an opaque token only this API issues",
    "POST /api/v1/execution-jobs": "cross-field rules (checkout after checkin, origin is not dest, a return "
                                   "not before departure) and a `profileId` that exists",
    "POST /api/v1/agent/restaurant/book": "`datetime` in the future, on one of the venue's slot starts; "
                                          "integers without a fraction (JSON Schema counts 21.0 as an integer)",
    "POST /api/v1/agent/restaurant/modify": "the same, and at least one change that is not null",
    "POST /api/v1/policies": "a CUSTOM rule is a CEL expression that compiles and evaluates to a bool",
    "PATCH /api/v1/policies/{policy_id}": "the config fits the stored policy's type; a CUSTOM rule as on create",
    "GET /api/v1/webhooks": "`cursor` is an opaque token only this API issues",
    "GET /api/executions": "`cursor` is an opaque token only this API issues",
    "GET /api/v1/webhooks/{webhook_id}/deliveries": "the same",
    "POST /api/v1/webhooks": "the `url` resolves to a public address (DNS is looked up), with no credentials",
    "PATCH /api/v1/webhooks/{webhook_id}": "the same for a new `url`",
}


def schemathesis_config() -> str:
    """schemathesis.toml turning off, per operation, the checks the lists above name."""
    blocks = [(name, ["positive_data_acceptance"]) for name in BEYOND_JSON_SCHEMA]
    lines = []
    for name, checks in blocks:
        lines += ["[[operations]]", f"include-name = {json.dumps(name)}"]
        lines += [f"checks.{check}.enabled = false" for check in checks]
        lines.append("")
    return "\n".join(lines)


@pytest.fixture(scope="module")
async def conformance_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, str]]:
    """A server of its own (no browser, so generated jobs stay cheap) and an admin key: (base URL, key)."""
    data_dir: Path = tmp_path_factory.mktemp("errand-conformance")
    db_url = f"sqlite+aiosqlite:///{data_dir / 'errand.db'}"
    settings = Settings(data_dir=data_dir, database_url=db_url, port=free_port(), secret_key=SECRET_KEY,
                        browser_path=str(data_dir / "no-browser"), job_concurrency=2, log_level="ERROR")
    await upgrade_to_head(db_url)
    db = Database(db_url)
    try:
        async with db.unit_of_work() as session:
            issued = await identity_service.create_api_key(
                session, organization_name="Conformance", env="test", role="admin",
                scenarios=["restaurant", "hotel", "flight", "activity"], rate_limit_per_day=1_000_000)
        async with running(settings) as base_url:
            yield base_url, issued.plaintext
    finally:
        await db.dispose()


def schemathesis_command(base_url: str, document: str, key: str, config: Path) -> list[str]:
    """The schemathesis run for one document, as the README gives it."""
    return [
        str(Path(sys.executable).parent / "schemathesis"), "--no-color", "--config-file", str(config),
        "run", f"{base_url}{document}",
        "--url", base_url, "--max-examples", str(MAX_EXAMPLES), "--workers", "1",
        "--seed", "8", "--suppress-health-check", "all",
        "-H", f"Authorization: Bearer {key}", "-H", f"X-Integration-Key: {key}",
    ]


@pytest.mark.parametrize("dialect", list(DOCUMENTS))
async def test_schemathesis_finds_no_failures(conformance_server: tuple[str, str], dialect: str,
                                              tmp_path: Path) -> None:
    base_url, key = conformance_server
    config = tmp_path / "schemathesis.toml"
    config.write_text(schemathesis_config())
    process = await asyncio.create_subprocess_exec(
        *schemathesis_command(base_url, DOCUMENTS[dialect], key, config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,  # its cache goes there
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode(errors="replace")[-20_000:]
