"""errand.llm.service.reason: ai_reason's structured answer from the configured LLM (issue 12, "Steps").

With pydantic-ai's test models (through ``service.override``), and against a real
OpenAI-compatible / Anthropic HTTP server the test starts (tests/llm/fake_llm.py).
"""

import json
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from errand.kit.config import Settings
from errand.kit.errors import InvalidRequest
from errand.llm import service
from errand.llm.errors import LlmFailed, LlmNotConfigured, LlmOutputSchemaInvalid
from errand.llm.schemas import DEFAULT_MODELS, TIERS
from tests.llm.fake_llm import Hang, Raw, Status, Text, fake_llm

KEY = "sk-test-0123456789abcdefSECRET"
CLASSIFY = {
    "type": "object",
    "properties": {
        "priority": {"type": "string", "enum": ["p1", "p2", "p3"]},
        "category": {"type": "string", "minLength": 1},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["priority", "category", "score"],
    "additionalProperties": False,
}
MODELS = {"quick": "tiny-1", "standard": "mid-2", "premium": "big-3", "expert": "huge-4"}


def llm_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "llm_provider": "openai-compatible", "llm_base_url": "http://127.0.0.1:9/v1", "llm_api_key": KEY,
        **{f"llm_model_{tier}": name for tier, name in MODELS.items()}, **overrides,
    }
    return Settings(**values)


def answering(*answers: dict[str, Any] | str) -> FunctionModel:
    """A model that calls the output tool with each answer in turn (a str is plain text)."""
    calls = iter(answers)

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        answer = next(calls)
        if isinstance(answer, str):
            return ModelResponse(parts=[TextPart(answer)])
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, answer)])

    return FunctionModel(respond)


# --- with pydantic-ai's test models ---------------------------------------------------------------


async def test_output_fits_the_schema() -> None:
    with service.override(TestModel()):
        reasoned = await service.reason(llm_settings(), tier="standard", prompt="Classify: the VPN is down",
                                        output_schema=CLASSIFY)
    assert reasoned.output["priority"] in {"p1", "p2", "p3"}
    assert set(reasoned.output) == {"priority", "category", "score"}
    assert reasoned.model == "mid-2"
    assert reasoned.input_tokens and reasoned.output_tokens


@pytest.mark.parametrize("schema,answer", [
    ({"type": "array", "items": {"type": "integer"}, "minItems": 1}, [1, 2]),
    ({"type": "string", "enum": ["yes", "no"]}, "no"),
    ({"$defs": {"n": {"type": "number"}}, "$ref": "#/$defs/n"}, 2.5),
    ({"type": ["object", "null"]}, None),
])
async def test_a_non_object_schema_is_wrapped_and_unwrapped(schema: dict[str, Any], answer: Any) -> None:
    with service.override(answering({"result": answer})):
        reasoned = await service.reason(llm_settings(), tier="quick", prompt="p", output_schema=schema)
    assert reasoned.output == answer


async def test_an_answer_that_does_not_fit_is_sent_back_and_retried() -> None:
    seen: list[list[ModelMessage]] = []
    answers = iter([{"priority": "urgent!!", "category": "x", "score": 3},
                    {"priority": "p1", "category": "security", "score": 9}])

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(list(messages))
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, next(answers))])

    with service.override(FunctionModel(respond)):
        reasoned = await service.reason(llm_settings(), tier="quick", prompt="p", output_schema=CLASSIFY)
    assert reasoned.output == {"priority": "p1", "category": "security", "score": 9}
    told = str(seen[1][-1].parts)  # the model is told what did not fit
    assert "$.priority" in told and "is not one of" in told


async def test_an_answer_that_never_fits_fails_after_the_retries() -> None:
    calls = 0

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        nonlocal calls
        calls += 1
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"priority": "p9", "score": -1})])

    with service.override(FunctionModel(respond)), pytest.raises(LlmFailed) as failed:
        await service.reason(llm_settings(), tier="premium", prompt="p", output_schema=CLASSIFY)
    assert calls == service.OUTPUT_RETRIES + 1
    assert failed.value.code == "llm_failed" and failed.value.kind == "unavailable"
    assert "big-3" in failed.value.message and "output schema" in failed.value.message


async def test_text_instead_of_the_structured_answer_is_retried() -> None:
    with service.override(answering("I think it is p1.", {"priority": "p1", "category": "c", "score": 1})):
        reasoned = await service.reason(llm_settings(), tier="quick", prompt="p", output_schema=CLASSIFY)
    assert reasoned.output["priority"] == "p1"


async def test_no_provider_is_llm_not_configured_and_no_answer() -> None:
    settings = Settings(llm_provider="none")
    assert Settings.model_fields["llm_provider"].default == "none"
    with pytest.raises(LlmNotConfigured) as refused:
        await service.reason(settings, tier="quick", prompt="p", output_schema=CLASSIFY)
    assert refused.value.code == "llm_not_configured" and refused.value.kind == "conflict"
    assert "ERRAND_LLM_PROVIDER" in refused.value.message
    assert not service.configured(settings)
    assert all(service.model_name(settings, tier) is None for tier in TIERS)


@pytest.mark.parametrize("provider,variable", [("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")])
async def test_a_provider_without_an_api_key_is_not_configured(provider: str, variable: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(variable, raising=False)
    with pytest.raises(LlmNotConfigured, match="ERRAND_LLM_API_KEY"):
        await service.reason(Settings(llm_provider=provider), tier="quick", prompt="p", output_schema=CLASSIFY)


async def test_a_schema_naming_its_draft_is_checked_by_that_draft() -> None:
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
              "properties": {"when": {"type": "string"}}, "required": ["when"], "additionalProperties": False}
    with service.override(answering({"when": 1}, {"when": "now"})):
        reasoned = await service.reason(llm_settings(), tier="quick", prompt="p", output_schema=schema)
    assert reasoned.output == {"when": "now"}


async def test_openai_compatible_without_a_model_for_the_tier_is_not_configured() -> None:
    settings = llm_settings(llm_model_expert=None)
    assert service.model_name(settings, "expert") is None
    with pytest.raises(LlmNotConfigured, match="ERRAND_LLM_MODEL_EXPERT"):
        await service.reason(settings, tier="expert", prompt="p", output_schema=CLASSIFY)


def test_every_tier_maps_to_its_model_name() -> None:
    assert {tier: service.model_name(llm_settings(), tier) for tier in TIERS} == MODELS
    for provider in ("openai", "anthropic"):
        settings = Settings(llm_provider=provider, llm_api_key=KEY)
        assert service.configured(settings)
        assert {tier: service.model_name(settings, tier) for tier in TIERS} == DEFAULT_MODELS[provider]
    assert service.model_name(Settings(llm_provider="openai", llm_model_premium="gpt-x"), "premium") == "gpt-x"


@pytest.mark.parametrize("tier", TIERS)
async def test_each_tier_answers_with_its_model(tier: str) -> None:
    with service.override(TestModel()):
        reasoned = await service.reason(llm_settings(), tier=tier, prompt="p", output_schema=CLASSIFY)
    assert reasoned.model == MODELS[tier]


async def test_hostile_tiers_and_schemas_are_refused_before_any_request() -> None:
    with service.override(answering()):  # a request would raise StopIteration
        for tier in ("QUICK", "", "quick; DROP TABLE", "../expert"):
            with pytest.raises(InvalidRequest):
                await service.reason(llm_settings(), tier=tier, prompt="p", output_schema=CLASSIFY)
        for schema in ({"type": "no-such-type"}, {"properties": []}, {"minimum": "ten"}):
            with pytest.raises(LlmOutputSchemaInvalid) as invalid:
                await service.reason(llm_settings(), tier="quick", prompt="p", output_schema=schema)
            assert invalid.value.kind == "invalid"
        recursive = {"$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
                     "type": "object", "properties": {"head": {"$ref": "#/$defs/node"}}}
        with pytest.raises(LlmOutputSchemaInvalid):
            await service.reason(llm_settings(), tier="quick", prompt="p", output_schema=recursive)


def test_openai_compatible_needs_a_base_url() -> None:
    with pytest.raises(ValidationError, match="ERRAND_LLM_BASE_URL"):
        Settings(llm_provider="openai-compatible", llm_api_key=KEY)


def test_the_api_key_is_never_shown_by_the_settings() -> None:
    settings = llm_settings()
    assert settings.llm_api_key is not None and settings.llm_api_key.get_secret_value() == KEY
    for shown in (str(settings), repr(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert KEY not in shown


# --- against a real OpenAI-compatible HTTP server -------------------------------------------------


async def test_a_real_openai_compatible_server_answers(capsys: pytest.CaptureFixture[str]) -> None:
    prompt = "Classify ticket tkt_abc123: «VPN down» for Zoë <script>alert(1)</script> \"quoted\" \u0000 end"
    async with fake_llm([{"priority": "p1", "category": "security", "score": 8}]) as llm:
        settings = llm_settings(llm_base_url=llm.base_url)
        reasoned = await service.reason(settings, tier="premium", prompt=prompt, output_schema=CLASSIFY)
        again = await service.reason(settings, tier="premium", prompt=prompt, output_schema=CLASSIFY)
    assert reasoned == again
    assert reasoned.output == {"priority": "p1", "category": "security", "score": 8}
    assert (reasoned.model, reasoned.input_tokens, reasoned.output_tokens) == ("big-3", 42, 7)
    sent = llm.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["model"] == "big-3"
    assert any(prompt in json.dumps(message, ensure_ascii=False) or prompt == message.get("content")
               for message in sent.body["messages"])
    tool = sent.body["tools"][0]["function"]
    assert tool["parameters"]["properties"]["priority"]["enum"] == ["p1", "p2", "p3"]
    logged = capsys.readouterr()
    assert "Zoë" not in logged.out + logged.err and KEY not in logged.out + logged.err


async def test_every_tier_reaches_the_server_with_its_model_name() -> None:
    async with fake_llm([{"result": "ok"}]) as llm:
        settings = llm_settings(llm_base_url=llm.base_url)
        for tier in TIERS:
            reasoned = await service.reason(settings, tier=tier, prompt="p", output_schema={"type": "string"})
            assert reasoned.output == "ok"
    assert [sent.body["model"] for sent in llm.requests] == [MODELS[tier] for tier in TIERS]


async def test_a_wrong_answer_from_the_server_is_retried_then_fails() -> None:
    async with fake_llm([{"priority": "p1"}]) as llm:  # always misses category and score
        with pytest.raises(LlmFailed) as failed:
            await service.reason(llm_settings(llm_base_url=llm.base_url), tier="quick", prompt="p",
                                 output_schema=CLASSIFY)
    assert len(llm.requests) == service.OUTPUT_RETRIES + 1
    retry = json.dumps(llm.requests[1].body["messages"][-1])
    assert "category" in retry  # the validation error went back to the model
    assert "output schema" in failed.value.message


@pytest.mark.parametrize("answers,what", [
    ([Status(500)], "HTTP 500"),
    ([Status(401)], "HTTP 401"),
    ([Raw("this is not json {")], ""),
    ([Raw('{"choices": "nope"}')], ""),
    ([Text("no tool for you")], "output schema"),
])
async def test_a_failing_server_is_llm_failed_without_secrets(answers: list[Any], what: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    async with fake_llm(answers) as llm:
        with pytest.raises(LlmFailed) as failed:
            await service.reason(llm_settings(llm_base_url=llm.base_url), tier="standard",
                                 prompt="secret prompt about Zoë", output_schema=CLASSIFY)
    assert failed.value.code == "llm_failed" and failed.value.kind == "unavailable"
    assert what in failed.value.message and "mid-2" in failed.value.message
    shown = str(failed.value) + repr(failed.value) + json.dumps(failed.value.to_dict())
    assert KEY not in shown and "Zoë" not in shown and failed.value.__cause__ is None
    logged = capsys.readouterr()
    assert KEY not in logged.out + logged.err and "Zoë" not in logged.out + logged.err


async def test_a_server_slower_than_the_timeout_is_llm_failed() -> None:
    async with fake_llm([Hang()]) as llm:
        with pytest.raises(LlmFailed) as failed:
            await service.reason(llm_settings(llm_base_url=llm.base_url, llm_timeout_seconds=0.5),
                                 tier="quick", prompt="p", output_schema=CLASSIFY)
    assert KEY not in failed.value.message
    assert llm.requests  # it was asked, and did not answer in time


async def test_an_unreachable_server_is_llm_failed() -> None:
    from tests.conftest import free_port
    settings = llm_settings(llm_base_url=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(LlmFailed, match="could not be reached"):
        await service.reason(settings, tier="quick", prompt="p", output_schema=CLASSIFY)


async def test_anthropic_is_reached_with_its_own_api_shape() -> None:
    async with fake_llm([{"priority": "p2", "category": "billing", "score": 4}]) as llm:
        settings = Settings(llm_provider="anthropic", llm_base_url=llm.base_url.removesuffix("/v1"), llm_api_key=KEY)
        reasoned = await service.reason(settings, tier="quick", prompt="Classify this", output_schema=CLASSIFY)
    assert reasoned.output == {"priority": "p2", "category": "billing", "score": 4}
    assert reasoned.model == DEFAULT_MODELS["anthropic"]["quick"]
    sent = llm.requests[0]
    assert sent.path == "/v1/messages" and "anthropic-version" in sent.headers
    assert KEY in (sent.headers.get("x-api-key"), sent.headers.get("authorization", "").removeprefix("Bearer "))
    assert sent.body["model"] == DEFAULT_MODELS["anthropic"]["quick"]


async def test_aclose_closes_the_clients_and_later_calls_build_new_ones() -> None:
    async with fake_llm([{"result": 1}]) as llm:
        settings = llm_settings(llm_base_url=llm.base_url)
        await service.reason(settings, tier="quick", prompt="p", output_schema={"type": "integer"})
        await service.aclose()
        reasoned = await service.reason(settings, tier="quick", prompt="p", output_schema={"type": "integer"})
    assert reasoned.output == 1 and len(llm.requests) == 2


def test_the_settings_come_from_errand_llm_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    variables = {"PROVIDER": "openai-compatible", "BASE_URL": "http://127.0.0.1:11434/v1", "API_KEY": KEY,
                 "MODEL_QUICK": "a", "MODEL_STANDARD": "b", "MODEL_PREMIUM": "c", "MODEL_EXPERT": "d",
                 "TIMEOUT_SECONDS": "12.5"}
    for name, value in variables.items():
        monkeypatch.setenv(f"ERRAND_LLM_{name}", value)
    settings = Settings()
    assert service.configured(settings) and settings.llm_timeout_seconds == 12.5
    assert [service.model_name(settings, tier) for tier in TIERS] == ["a", "b", "c", "d"]
    assert settings.llm_api_key is not None and settings.llm_api_key.get_secret_value() == KEY
    assert KEY not in str(settings) and KEY not in repr(settings)
    monkeypatch.setenv("ERRAND_LLM_PROVIDER", "gemini")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("ERRAND_LLM_PROVIDER", "openai")
    monkeypatch.setenv("ERRAND_LLM_TIMEOUT_SECONDS", "0")
    with pytest.raises(ValidationError):
        Settings()
