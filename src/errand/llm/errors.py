"""The errors of reasoning with an LLM (issue 12 "Steps": ai_reason).

- :class:`LlmNotConfigured` (``llm_not_configured``, conflict, 409): no provider is configured
  (``ERRAND_LLM_PROVIDER=none``, the default), or no model for the tier. The state of the
  deployment refuses the step; retrying changes nothing until an operator configures one, so it is
  not ``unavailable`` (which says "safe to retry").
- :class:`LlmFailed` (``llm_failed``, unavailable, 503): the provider failed (HTTP error, refused
  key, timeout) or answered something that does not fit the output schema after its retries.
- :class:`LlmOutputSchemaInvalid` (``llm_output_schema_invalid``, invalid, 400): the output schema
  is not a JSON Schema this service can ask for.

Messages never carry the prompt, the model's answer or the API key.
"""

from errand.kit.errors import Conflict, InvalidRequest, Unavailable


class LlmNotConfigured(Conflict):
    code = "llm_not_configured"


class LlmFailed(Unavailable):
    code = "llm_failed"


class LlmOutputSchemaInvalid(InvalidRequest):
    code = "llm_output_schema_invalid"
