"""What :mod:`errand.llm.service` takes and answers: model tiers, default model names, ``Reasoned``."""

from dataclasses import dataclass
from typing import Any, Literal, get_args

Tier = Literal["quick", "standard", "premium", "expert"]
# The ai_reason step's ``model`` tiers (RESOLUTIONS.md, "Step types"; credits 5/20/100/200).
TIERS: tuple[str, ...] = get_args(Tier)

# The model of each tier when ERRAND_LLM_MODEL_<TIER> is unset (docs/llm.md). An
# openai-compatible server has no defaults: its models are whatever it serves.
DEFAULT_MODELS: dict[str, dict[str, str]] = {
    "openai": {"quick": "gpt-4o-mini", "standard": "gpt-4o", "premium": "gpt-4.1", "expert": "o3"},
    "anthropic": {
        "quick": "claude-3-5-haiku-latest", "standard": "claude-sonnet-4-0",
        "premium": "claude-opus-4-0", "expert": "claude-opus-4-1",
    },
}


@dataclass(frozen=True)
class Reasoned:
    """The answer of one ai_reason call.

    ``output`` fits the call's output schema (validated with ``jsonschema``); ``model`` is the
    model name that answered; the token counts are the sums over every request of the call
    (retries included), None when the provider did not report them.
    """

    output: Any
    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None
