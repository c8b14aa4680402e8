from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from errand.guard import cel

PolicyType = Literal["SPENDING_LIMIT", "TIME_RESTRICTION", "RATE_LIMIT", "APPROVAL_REQUIRED", "CUSTOM"]
POLICY_TYPES: tuple[str, ...] = PolicyType.__args__  # type: ignore[attr-defined]
Outcome = Literal["allow", "deny", "requires_approval"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Numbers must be JSON numbers: "10" or true are refused rather than quietly coerced.
Amount = Annotated[float, Field(strict=True, ge=0)]
Hour = Annotated[int, Field(strict=True)]


class SpendingLimitConfig(_Config):
    maxAmountUsd: Amount


class TimeRestrictionConfig(_Config):
    allowedHours: Annotated[list[Hour], Field(min_length=2, max_length=2)]

    @field_validator("allowedHours")
    @classmethod
    def _hours(cls, value: list[int]) -> list[int]:
        start, end = value
        if not (0 <= start <= 23 and 1 <= end <= 24) or start == end:
            raise ValueError("allowedHours is [start, end]: 0 <= start <= 23, 1 <= end <= 24, start != end")
        return value


class RateLimitConfig(_Config):
    maxRequestsPerHour: int = Field(strict=True, ge=1, le=1_000_000)


class ApprovalRequiredConfig(_Config):
    threshold: Amount | None = None


class CustomConfig(_Config):
    """A CEL rule over ``request``; within the limits of :func:`errand.guard.cel.check`."""

    rule: str = Field(min_length=1)
    action: Literal["deny", "requires_approval"] = "deny"
    message: str | None = Field(default=None, max_length=500)

    @field_validator("rule")
    @classmethod
    def _bounded(cls, value: str) -> str:
        try:
            cel.check(value)
        except cel.RuleError as exc:
            raise ValueError(str(exc)) from None  # our own words: errand.kit.inputs.issues passes them on
        return value


CONFIG_MODELS: dict[str, type[_Config]] = {
    "SPENDING_LIMIT": SpendingLimitConfig,
    "TIME_RESTRICTION": TimeRestrictionConfig,
    "RATE_LIMIT": RateLimitConfig,
    "APPROVAL_REQUIRED": ApprovalRequiredConfig,
    "CUSTOM": CustomConfig,
}


class PolicyCreate(BaseModel):
    """A new policy; without a ``name`` it is named after its type."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    type: PolicyType
    config: dict[str, Any]
    enabled: bool = True

    @model_validator(mode="after")
    def _default_name(self) -> "PolicyCreate":
        if self.name is None:
            self.name = self.type
        return self


class PolicyUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    config: dict[str, Any] | None = None
    enabled: StrictBool | None = None


class PolicyView(BaseModel):
    id: str
    name: str
    type: str
    config: dict[str, Any]
    enabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ActionContext:
    """What a policy sees of an action. ``fields`` is the CEL ``request`` object."""

    organization_id: str
    amount_usd: float
    local_hour: int
    fields: dict[str, Any]


@dataclass
class Decision:
    outcome: Outcome = "allow"
    policy_id: str | None = None
    policy_name: str | None = None
    reason: str | None = None
    evaluated: list[dict[str, Any]] = field(default_factory=list)


class ApprovalView(BaseModel):
    id: str
    subject_type: str
    subject_id: str
    policy_id: str | None
    status: str
    message: str
    action: dict[str, Any]
    action_digest: str
    amount_usd: float
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    note: str | None
    created_at: datetime
