"""The errors automations raise (the automations dialect's codes, spec/automations-api.txt)."""

from errand.kit.errors import InvalidRequest, NotFound, PaymentRequired, RateLimited


class AgentNotFound(NotFound):
    """No such agent in the caller's organization and mode (another organization's too) (404)."""

    code = "agent_not_found"


class TemplateNotFound(NotFound):
    """No template of that id (404)."""

    code = "template_not_found"


class InvalidAgentConfig(InvalidRequest):
    """An agent definition that fails validation; ``details`` names each bad field's path,
    e.g. ``steps[2].model`` (400)."""

    code = "invalid_agent_config"


class AgentLimitReached(RateLimited):
    """Activating one more custom agent would pass the organization's limit of active agents (429)."""

    code = "agent_limit_reached"


class ExecutionNotFound(NotFound):
    """No such execution in the caller's organization and mode (another organization's too) (404)."""

    code = "execution_not_found"


class CreditInsufficient(PaymentRequired):
    """The organization has too few credits left this month for what the request would spend (402)."""

    code = "credit_insufficient"
