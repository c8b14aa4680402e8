"""What a log line may say: the redaction processor every line passes (errand.kit.logging.redact).

Lines are rendered by structlog with the processor as configured, into a logger that returns
them; hostile values hide secrets and personal data where a careless call might put them.
"""

import json
from typing import Any

import structlog

from errand.kit import logging

KEY = "ar_live_hNfy-FCbhKZgP8qJLl0X3M4jY-Ml1xTxOJT3Bh9-jMA"


def rendered(event: str, **fields: Any) -> dict[str, Any]:
    logger = structlog.wrap_logger(structlog.ReturnLogger(), wrapper_class=structlog.BoundLogger, processors=[
        logging.redact, structlog.processors.JSONRenderer()])  # whatever level an earlier test configured
    line = logger.info(event, **fields)
    assert isinstance(line, str)
    for secret in (KEY, "jane@example.com", "4242 4242 4242 4242", "4000056655665556", "+1 555 123 4567",
                   "whsec_c2VjcmV0c2VjcmV0c2VjcmV0", "Jane Doe"):
        assert secret not in line, line
    return json.loads(line)


def test_fields_named_for_secrets_or_people_are_dropped() -> None:
    line = rendered("booking_failed", authorization=f"Bearer {KEY}", Authorization=KEY, api_key=KEY,
                    x_integration_key=KEY, password="hunter2", token="t", client_secret="s", email="jane@example.com",
                    customer_email="jane@example.com", phone="+1 555 123 4567", name="Jane Doe",
                    customer={"name": "Jane Doe"}, card_number="4242 4242 4242 4242", body={"x": 1},
                    job_id="job_1", api_key_id="key_1", key_prefix=KEY[:12], status=409)
    assert line == {"event": "booking_failed", "job_id": "job_1", "api_key_id": "key_1", "key_prefix": KEY[:12],
                    "status": 409}


def test_secrets_and_personal_data_inside_values_are_masked() -> None:
    line = rendered("provider_error", detail=f"upstream said: card 4000056655665556 refused for jane@example.com "
                                             f"(auth Bearer {KEY}); whsec_c2VjcmV0c2VjcmV0c2VjcmV0",
                    nested={"errors": [{"reason": f"key {KEY}", "contact": {"email": "jane@example.com"}}]},
                    attempts=[1, 2, 3], reservation="res_20270101_1234")
    assert line["detail"].startswith("upstream said: card [redacted] refused for [redacted]")
    assert line["nested"]["errors"][0] == {"reason": "key [redacted]", "contact": "[redacted]"}
    assert line["attempts"] == [1, 2, 3]
    assert line["reservation"] == "res_20270101_1234"  # ids and short numbers stay readable


def test_request_fields_reach_lines_logged_inside_the_scope_only() -> None:
    logger = structlog.wrap_logger(structlog.ReturnLogger(), wrapper_class=structlog.BoundLogger, processors=[
        logging._merge_fields, logging.redact, structlog.processors.JSONRenderer()])
    with logging.request_scope(request_id="r1", trace_id="t" * 32) as fields:
        logging.note_caller("org_1", KEY[:12])
        inside = json.loads(logger.info("request", route="/api/v1/agent/restaurant/book"))
    outside = json.loads(logger.info("idle"))
    assert inside == {"event": "request", "route": "/api/v1/agent/restaurant/book", "request_id": "r1",
                      "trace_id": "t" * 32, "organization_id": "org_1", "key_prefix": KEY[:12]}
    assert fields["organization_id"] == "org_1"
    assert outside == {"event": "idle"}
    logging.note_caller("org_2", "x")  # outside any request: nothing to name, nothing fails
