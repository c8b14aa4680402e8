"""The sandbox's and the provider adapters' declared errors keep the wire codes and kinds they answered before."""

import pytest

from errand.kit.errors import DomainError
from errand.providers import errors as provider_errors
from errand.sandbox import errors as sandbox_errors


@pytest.mark.parametrize(("error", "code", "kind"), [
    (sandbox_errors.Invalid("x"), "invalid", "invalid"),
    (sandbox_errors.UnsupportedScenario("x"), "unsupported_scenario", "invalid"),
    (sandbox_errors.LoginRequired("x"), "login_required", "unauthorized"),
    (sandbox_errors.CaptchaRequired("x"), "captcha_required", "forbidden"),
    (sandbox_errors.NotServed("x"), "venue_not_served", "not_found"),
    (sandbox_errors.UnknownVenue("x", ["Carbone"]), "unknown_venue", "not_found"),
    (sandbox_errors.Unbookable("x", ["19:00"]), "no_availability", "conflict"),
    (sandbox_errors.CardDeclined("x"), "card_declined", "conflict"),
    (sandbox_errors.Flaky("x"), "provider_flaky", "unavailable"),
    (sandbox_errors.InjectedFault("x"), "injected_fault", "unavailable"),
    (sandbox_errors.KeyInFlight("x"), "busy", "unavailable"),
    (provider_errors.NoAvailability("x"), "capacity_exceeded", "conflict"),
    (provider_errors.ProviderUnavailable("p", "x"), "provider_unavailable", "unavailable"),
    (provider_errors.ProviderNotFound("x"), "not_found", "not_found"),
    (provider_errors.ProviderRejected("x"), "provider_rejected", "invalid"),
    (provider_errors.ProviderConflict("x"), "provider_conflict", "conflict"),
    (provider_errors.ProviderMismatch("x"), "provider_mismatch", "conflict"),
    (provider_errors.VenueNotServed("p", "x"), "venue_not_served", "not_found"),
    (provider_errors.VenueUnknown("p", "x"), "unknown_venue", "not_found"),
    (provider_errors.NeedsLogin("p", "x"), "needs_login", "forbidden"),
    (provider_errors.CaptchaRequired("p", "x"), "captcha", "forbidden"),
])
def test_each_error_answers_its_code_and_kind(error: DomainError, code: str, kind: str) -> None:
    assert (error.code, error.kind) == (code, kind)
    assert DomainError.declared[code] in type(error).__mro__


def test_the_sandbox_speaks_for_itself_and_an_adapter_names_its_provider() -> None:
    assert sandbox_errors.NotServed("Web Air sells none of them.").message == "Web Air sells none of them."
    assert provider_errors.VenueNotServed("web-air", "not sold").message == "web-air: not sold"
    unknown = sandbox_errors.UnknownVenue("No such restaurant.", ["Carbone"])
    assert isinstance(unknown, sandbox_errors.VenueNotServed)
    assert (unknown.details, unknown.suggestions) == ({"suggestions": ["Carbone"]}, ["Carbone"])


def test_retriable_sandbox_errors_say_when_to_come_back() -> None:
    assert sandbox_errors.Flaky("x").retry_after == sandbox_errors.InjectedFault("x").retry_after == 1
    assert provider_errors.ProviderUnavailable("p", "x", retry_after=7).retry_after == 7
