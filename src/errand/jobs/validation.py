"""Turning a raw job request into a :class:`JobCreate` (and a raw profile into a :class:`Profile`),
or a 400 listing every issue.

The issues are reported the way the contract's zod validation does: one entry per
problem, each with the path into the body and a message (:func:`errand.kit.inputs.issues`).
"""

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from errand.jobs.schemas import PARAMS_MODELS, ClientMetadata, Consent, JobCreate, JobRequestBody, Profile
from errand.kit import inputs
from errand.kit.errors import InvalidRequest

MAX_PROFILE_ID = 2**63 - 1  # the largest id a database column holds
_FLIGHT_PROFILE_FIELDS = ("dob", "passport_number", "passport_country")


def _check(model: type[BaseModel], value: Any, prefix: str, issues: list[dict[str, Any]]) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        issues.extend(inputs.issues(exc, prefix=prefix.split(".")))
        return None


def validate_job_request(body: Any) -> JobCreate:
    """Raises InvalidRequest (code invalid_request) with ``details`` = the list of issues."""
    issues: list[dict[str, Any]] = []
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.", details=[{"path": "", "message": "expected an object"}])
    request = _check(JobRequestBody, body.get("request"), "request", issues)
    params = None
    if request is not None:
        params = _check(PARAMS_MODELS[request.scenario], request.params, "request.params", issues)
    has_id, has_profile = body.get("profileId") is not None, body.get("profile") is not None
    profile = None
    if has_id == has_profile:
        issues.append({"path": "profile", "message": "give exactly one of profileId or profile"})
    elif has_id and (not isinstance(body["profileId"], int) or isinstance(body["profileId"], bool)
                     or not 1 <= body["profileId"] <= MAX_PROFILE_ID):
        issues.append({"path": "profileId", "message": f"must be a positive integer up to {MAX_PROFILE_ID}"})
    elif has_profile:
        profile = _check(Profile, body["profile"], "profile", issues)
        if profile is not None and request is not None and request.scenario == "flight":
            for field in _FLIGHT_PROFILE_FIELDS:
                if getattr(profile, field) is None:
                    issues.append({"path": f"profile.{field}", "message": "required for flights"})
    consent = _check(Consent, body.get("consent") or {}, "consent", issues)
    metadata = _check(ClientMetadata, body.get("clientMetadata") or {}, "clientMetadata", issues)
    unknown = sorted(set(body) - {"request", "profileId", "profile", "consent", "clientMetadata"})
    issues.extend({"path": key, "message": "unknown field"} for key in unknown)
    if issues or request is None or params is None or consent is None or metadata is None:
        summary = "; ".join(f"{i['path']}: {i['message']}" for i in issues[:5])
        raise InvalidRequest(f"The job request is invalid: {summary}", details=issues)
    return JobCreate(
        scenario=request.scenario,
        params=params.model_dump(mode="json", exclude_none=True),
        profile_id=body.get("profileId"),
        profile=profile,
        consent=consent,
        client_metadata=metadata,
    )


def check_providers(consent: Consent, known: Iterable[str]) -> None:
    """Raises InvalidRequest naming every id in ``allowedProviders``/``blockedProviders`` that no
    registered provider has (the ids ``GET /api/v1/providers`` lists); a misspelt id would
    otherwise silently allow nothing or block nothing."""
    ids = set(known)
    unknown = [(f"consent.{field}.{i}", value) for field in ("allowedProviders", "blockedProviders")
               for i, value in enumerate(getattr(consent, field) or []) if value not in ids]
    if unknown:
        names = ", ".join(dict.fromkeys(repr(value) for _, value in unknown))
        raise InvalidRequest(
            f"The job request is invalid: unknown provider id {names}; known providers: {', '.join(sorted(ids))}.",
            details=[{"path": path, "message": f"unknown provider id {value!r}"} for path, value in unknown])


def validate_profile(body: Any) -> Profile:
    """A traveler profile to store; raises InvalidRequest with ``details`` = the list of issues."""
    try:
        return Profile.model_validate(body)
    except ValidationError as exc:
        found = inputs.issues(exc)
        raise InvalidRequest(f"The profile is invalid: {inputs.summarize(found)}.", details=found) from None
