"""Reasoning with the configured LLM, by model tier: what automations' ``ai_reason`` step calls.

Issue 12, "Steps": an ai_reason step has a model tier (quick/standard/premium/expert), a prompt
and an output JSON Schema, and runs through pydantic-ai against the configured provider
(``ERRAND_LLM_PROVIDER`` openai | anthropic | openai-compatible, ``ERRAND_LLM_BASE_URL``,
``ERRAND_LLM_API_KEY``, ``ERRAND_LLM_MODEL_<TIER>``). With no provider it fails with
``llm_not_configured``, never a made-up answer; the output is validated against the schema.

How a call goes (docs/llm.md):

- The model answers through pydantic-ai's tool output, whose schema is ``output_schema`` (a
  non-object schema is wrapped as ``{"result": <schema>}`` and unwrapped again, since a tool's
  arguments are an object). Each answer is checked with ``jsonschema`` while pydantic-ai
  validates it, so an answer that does not fit is sent back to the model with the error, up to
  :data:`OUTPUT_RETRIES` times; the final output is checked once more before it is returned.
- ``ERRAND_LLM_TIMEOUT_SECONDS`` bounds the whole call, every request and retry included. The
  provider's SDK retries a failed request (429, 5xx, connection) once itself.
- One pydantic-ai ``Agent`` (and so one provider HTTP client) is built per provider, base URL,
  key, model name and timeout, and reused by every call; :func:`aclose` closes their clients.
- Nothing here logs or reports the prompt, the answer or the API key.
"""

import asyncio
import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match
from pydantic import GetCoreSchemaHandler
from pydantic_ai import Agent, StructuredDict, UsageLimits
from pydantic_ai.exceptions import (
    ModelAPIError,
    ModelHTTPError,
    UnexpectedModelBehavior,
    UsageLimitExceeded,
    UserError,
)
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.providers.openai_compatible import OpenAICompatibleProvider
from pydantic_ai.settings import ModelSettings
from pydantic_core import core_schema

from errand.kit.config import Settings
from errand.kit.errors import InvalidRequest
from errand.kit.logging import get_logger
from errand.llm.errors import LlmFailed, LlmNotConfigured, LlmOutputSchemaInvalid
from errand.llm.schemas import DEFAULT_MODELS, TIERS, Reasoned

__all__ = ["OUTPUT_RETRIES", "Reasoned", "aclose", "configured", "model_name", "override", "reason"]

# How many times an answer that does not fit the output schema is sent back to the model.
OUTPUT_RETRIES = 2
# How many times the provider's SDK retries a failed request (429, 5xx, a dropped connection).
SDK_RETRIES = 1
INSTRUCTIONS = (
    "You are one step of an automation. Answer only by returning the structured output, which must "
    "fit its JSON Schema exactly. Use only what the prompt says."
)

_log = get_logger("errand.llm")
_agents: dict[tuple[Any, ...], Agent[None, Any]] = {}
_override: tuple[Model, Agent[None, Any]] | None = None


def configured(settings: Settings) -> bool:
    """Whether an LLM provider is configured (``ERRAND_LLM_PROVIDER`` other than ``none``)."""
    return settings.llm_provider != "none"


def model_name(settings: Settings, tier: str) -> str | None:
    """The model name of ``tier``: ``ERRAND_LLM_MODEL_<TIER>``, else the provider's default
    (:data:`errand.llm.schemas.DEFAULT_MODELS`); None with no provider, or for an
    openai-compatible server without that setting.

    Raises :class:`~errand.kit.errors.InvalidRequest` for a tier not in quick, standard,
    premium, expert (RESOLUTIONS.md, "Step types").
    """
    if tier not in TIERS:
        raise InvalidRequest(f"Unknown model tier {tier!r}: one of {', '.join(TIERS)}.")
    if not configured(settings):
        return None
    explicit: str | None = getattr(settings, f"llm_model_{tier}")
    return explicit or DEFAULT_MODELS.get(settings.llm_provider, {}).get(tier)


async def reason(settings: Settings, *, tier: str, prompt: str, output_schema: dict[str, Any]) -> Reasoned:
    """Ask the model of ``tier`` about ``prompt`` for an answer that fits ``output_schema``.

    ``output_schema`` is a JSON Schema (any draft ``jsonschema`` knows, by its ``$schema``; 2020-12
    otherwise); ``Reasoned.output`` fits it, checked with ``jsonschema``. Token counts are summed
    over the call's requests. Under :func:`override` (tests only) the test model answers instead.

    Raises:
        InvalidRequest: ``tier`` is not a model tier.
        LlmOutputSchemaInvalid: ``output_schema`` is not a valid JSON Schema, or one pydantic-ai
            cannot send (a recursive ``$ref``).
        LlmNotConfigured: no provider (``ERRAND_LLM_PROVIDER=none``), no model for the tier, or a
            provider that needs an API key without one.
        LlmFailed: the provider failed (HTTP error, unreachable, past ``ERRAND_LLM_TIMEOUT_SECONDS``)
            or answered something that does not fit ``output_schema`` after :data:`OUTPUT_RETRIES`
            retries. The message names the tier, the model and the failure, never the prompt,
            the answer or the key.
    """
    name = model_name(settings, tier)
    output_type, unwrap, validator = _output_spec(output_schema)
    if _override is not None:
        test_model, agent = _override
        name = name or test_model.model_name
    elif not configured(settings):
        raise LlmNotConfigured(
            "No LLM provider is configured: set ERRAND_LLM_PROVIDER (openai, anthropic or openai-compatible).")
    elif name is None:
        raise LlmNotConfigured(f"No model is configured for the {tier} tier: set ERRAND_LLM_MODEL_{tier.upper()}.")
    else:
        agent = _agent(settings, name)
    started = time.monotonic()
    try:
        async with asyncio.timeout(settings.llm_timeout_seconds):
            result = await agent.run(prompt, output_type=output_type,
                                     usage_limits=UsageLimits(request_limit=OUTPUT_RETRIES + 2))
    except TimeoutError:
        raise _failed(tier, name, f"did not answer within {settings.llm_timeout_seconds:g} s") from None
    except UsageLimitExceeded:
        raise _failed(tier, name, f"did not answer within {OUTPUT_RETRIES + 2} requests") from None
    except UnexpectedModelBehavior:
        attempts = OUTPUT_RETRIES + 1
        raise _failed(tier, name, f"gave no answer that fits the output schema in {attempts} attempts") from None
    except ModelHTTPError as error:
        raise _failed(tier, name, f"answered HTTP {error.status_code}") from None
    except ModelAPIError as error:
        raise _failed(tier, name, f"could not be reached ({type(error).__name__})") from None
    except Exception as error:  # the provider boundary: a malformed answer can break the SDK's parsers
        raise _failed(tier, name, f"failed ({type(error).__name__})") from None
    output = result.output.get("result") if unwrap else dict(result.output)
    error = best_match(validator.iter_errors(output))
    if error is not None:  # pydantic-ai validated it already: this is the belt over the braces
        raise _failed(tier, name, "answered something that does not fit the output schema")
    usage = result.usage
    reasoned = Reasoned(output=output, model=name, input_tokens=usage.input_tokens or None,
                        output_tokens=usage.output_tokens or None)
    _log.info("llm_reasoned", tier=tier, model=name, requests=usage.requests,
              input_tokens=reasoned.input_tokens, output_tokens=reasoned.output_tokens,
              duration_ms=round((time.monotonic() - started) * 1000))
    return reasoned


@contextmanager
def override(model: Model) -> Iterator[None]:
    """Tests only: make every :func:`reason` call in this process answer with ``model`` (pydantic-ai's
    ``TestModel`` or ``FunctionModel``) instead of the configured provider, whether one is
    configured or not. Process-wide (not a context variable), so a server started earlier in the
    same process sees it too; not for tests running concurrently. ``Reasoned.model`` is the tier's
    configured name, else the test model's name.
    """
    global _override
    previous = _override
    _override = (model, _new_agent(model, ModelSettings()))
    try:
        yield
    finally:
        _override = previous


async def aclose() -> None:
    """Close the HTTP clients of the agents built so far (at shutdown); later calls build new ones.

    Optional: a client left open is only freed at process exit, and pydantic-ai gives a reused
    agent a fresh client when its event loop changed.
    """
    agents = list(_agents.values())
    _agents.clear()
    for agent in agents:
        async with agent:  # leaving the outermost entry closes the provider's own client
            pass


def _agent(settings: Settings, name: str) -> Agent[None, Any]:
    """The agent of this provider configuration and model name, built on first use."""
    key_value = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    key = (settings.llm_provider, settings.llm_base_url, key_value, name, settings.llm_timeout_seconds)
    agent = _agents.get(key)
    if agent is None:
        agent = _agents[key] = _new_agent(_model(settings, name), ModelSettings(
            timeout=settings.llm_timeout_seconds, max_retries=SDK_RETRIES))
    return agent


def _new_agent(model: Model, model_settings: ModelSettings) -> Agent[None, Any]:
    return Agent(model, instructions=INSTRUCTIONS, model_settings=model_settings,
                 retries={"output": OUTPUT_RETRIES, "tools": 0}, name="errand.ai_reason")


def _model(settings: Settings, name: str) -> Model:
    """Build the pydantic-ai model of the configured provider (its HTTP client is created here)."""
    api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    base_url = settings.llm_base_url or None
    try:
        match settings.llm_provider:
            case "openai":
                return OpenAIChatModel(name, provider=OpenAIProvider(base_url=base_url, api_key=api_key))
            case "anthropic":
                return AnthropicModel(name, provider=AnthropicProvider(api_key=api_key, base_url=base_url))
            case _:
                assert base_url is not None  # Settings refuses openai-compatible without a base URL
                return OpenAIChatModel(name, provider=OpenAICompatibleProvider(
                    "openai-compatible", base_url=base_url, api_key=api_key))
    except UserError:
        raise LlmNotConfigured(
            f"The {settings.llm_provider} LLM provider needs an API key: set ERRAND_LLM_API_KEY.") from None


def _output_spec(schema: dict[str, Any]) -> tuple[type[Any], bool, jsonschema.protocols.Validator]:
    """The pydantic-ai output type for ``schema``, whether answers are wrapped in ``{"result": …}``,
    and the ``jsonschema`` validator of ``schema`` itself."""
    if not isinstance(schema, dict):
        raise LlmOutputSchemaInvalid("The output schema must be a JSON Schema object.")
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise LlmOutputSchemaInvalid(f"The output schema is not a valid JSON Schema: {error.message}") from None
    validator = validator_class(schema)
    unwrap = schema.get("type") != "object"
    sent = {k: v for k, v in copy.deepcopy(schema).items() if k not in ("$schema", "$id")}
    if unwrap:
        defs = {k: sent.pop(k) for k in ("$defs", "definitions") if k in sent}
        sent = {"type": "object", "properties": {"result": sent}, "required": ["result"],
                "additionalProperties": False, **defs}
    try:
        base = StructuredDict(sent, name="answer", description="The answer, fitting this JSON Schema.")
    except UserError:
        raise LlmOutputSchemaInvalid("The output schema cannot use recursive $ref.") from None

    def check(value: dict[str, Any]) -> dict[str, Any]:
        if unwrap and "result" not in value:
            raise ValueError("the answer goes in the 'result' property")
        error = best_match(validator.iter_errors(value.get("result") if unwrap else value))
        if error is not None:
            raise ValueError(f"the answer does not fit the schema at {error.json_path}: {error.message}")
        return value

    class Checked(base):  # type: ignore[valid-type,misc]
        """``base``'s JSON Schema, and a validator that checks each answer against it with jsonschema."""

        @classmethod
        def __get_pydantic_core_schema__(cls, source_type: Any,
                                         handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
            return core_schema.no_info_after_validator_function(check, core_schema.dict_schema(
                keys_schema=core_schema.str_schema(), values_schema=core_schema.any_schema()))

    return Checked, unwrap, validator


def _failed(tier: str, name: str, what: str) -> LlmFailed:
    _log.warning("llm_failed", tier=tier, model=name, reason=what)
    return LlmFailed(f"The {tier} model {name} {what}.")
