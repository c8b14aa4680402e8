"""INTERFACE (being built): reason with the configured LLM of a model tier.

async def reason(settings: Settings, *, tier: str, prompt: str, output_schema: dict[str, Any]) -> Reasoned
    Reasoned(output: Any, model: str)   # output validated against output_schema
Raises errand.llm.errors.LlmNotConfigured (code ``llm_not_configured``) when no provider is
configured, LlmFailed (``llm_failed``, kind unavailable) when the provider fails or answers
something that does not fit ``output_schema`` after its retries.
"""
