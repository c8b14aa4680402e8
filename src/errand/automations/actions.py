"""INTERFACE (being built): a product_action step's Errand operation.

async def run(core: Core, *, organization_id: str, env: str, agent_id: str, execution_id: str, step_id: str,
              operation: str, params: dict[str, Any]) -> dict[str, Any]
    Runs ``operation`` (schemas.PRODUCT_OPERATIONS) as the organization, through the same service
    functions as REST (policies, idempotency keyed by execution and step, audit); returns the
    step's output (JSON). Raises the operation's DomainError (its code becomes the step's error).
"""
