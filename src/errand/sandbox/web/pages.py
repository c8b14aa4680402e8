"""The pages of the sandbox web sites, one function each (docs/sandbox-web.md is their contract).

Each returns a whole :class:`HTMLResponse` through :func:`errand.sandbox.web.html.page`.
URLs come in ready-made (:class:`Urls`); nothing here touches the database.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi.responses import HTMLResponse

from errand.models.sandbox_web_session import SandboxWebSession
from errand.sandbox.offers import Offer
from errand.sandbox.web.html import attrs, esc, field, fields, form_errors, link, notice, page, summary
from errand.sandbox.web.sessions import Listing, offer_key
from errand.sandbox.web.sites import Input, Site


@dataclass(frozen=True)
class Urls:
    """The absolute URLs of one site; ``at(name, **params)`` resolves a route by name."""

    at: Callable[..., str]
    provider_id: str

    @property
    def home(self) -> str:
        return self.at("web_home", provider_id=self.provider_id)

    def step(self, name: str, sid: str) -> str:
        return self.at(f"web_{name}", provider_id=self.provider_id, sid=sid)

    def checkout(self, token: str) -> str:
        return self.at("web_checkout", provider_id=self.provider_id, token=token)

    def resume(self, token: str) -> str:
        return self.at("web_resume", provider_id=self.provider_id, token=token)


def _post_form(form_id: str | None, action: str, inner: str, extra: Mapping[str, object] | None = None) -> str:
    return f'<form{attrs({"id": form_id, **(extra or {})})} method="post" action="{esc(action)}">{inner}</form>'


def search(site: Site, urls: Urls, values: Mapping[str, str] | None = None,
           problems: Mapping[str, str] | None = None, status: int = 200) -> HTMLResponse:
    inputs = fields(site.search_inputs, values or {}, problems or {})
    button = f'<button id="{esc(site.search_button_id)}" type="submit">{esc(site.search_button)}</button>'
    body = form_errors(problems or {}) + _post_form(
        site.search_form_id, urls.at("web_search", provider_id=site.provider_id), inputs + button
    )
    return page(site, "search", site.search_button, body, status=status, step=0, home=urls.home)


def _search_summary(row: SandboxWebSession) -> str:
    s = row.search
    what = s.get("venue") or f"{s.get('origin')} → {s.get('dest')}"
    when = s["date"] + (f" to {s['end_date']}" if s.get("end_date") else "")
    return (f'<section id="search-summary"><p>{esc(what)}{", " + esc(s["city"]) if s.get("city") else ""} · '
            f"{esc(when)} · {esc(s['quantity'])}</p></section>")


def _item(site: Site, offer: Offer, action: str) -> str:
    start = offer.start.isoformat(timespec="minutes")
    common = {"class": site.listing.item_class, "data-offer": offer_key(offer),
              "data-total-usd": offer.total_price_usd, "data-unit-usd": offer.unit_price_usd}
    hidden = f'<input type="hidden" name="offer" value="{esc(offer_key(offer))}">'

    def choose(label: str) -> str:
        return _post_form(None, action, hidden + f'<button class="{site.listing.button_class}" type="submit">'
                          f"{esc(label)}</button>")

    if site.scenario == "restaurant":
        item = {**common, "data-time": f"{offer.start:%H:%M}", "data-start": start}
        return f'<li{attrs(item)}>{choose(f"{offer.start:%H:%M}")} <small>${offer.total_price_usd}</small></li>'
    if site.scenario == "hotel":
        item = {**common, "data-room": offer.unit, "data-room-name": offer.unit_name,
                "data-nightly-usd": offer.unit_price_usd}
        nights = offer.attributes.get("nights")
        return (f"<tr{attrs(item)}><td>{esc(offer.unit_name)}</td><td>up to {esc(offer.attributes.get('max_adults'))}"
                f" adults</td><td>${offer.unit_price_usd} / night</td><td>${offer.total_price_usd} for {nights} "
                f"night{'s' if nights != 1 else ''}</td><td>{choose('Reserve')}</td></tr>")
    if site.scenario == "flight":
        a = offer.attributes
        item = {**common, "data-flight": a["flight_number"], "data-cabin": offer.unit, "data-departs": start}
        arrives = datetime.fromisoformat(a["arrives_local"])
        return (f"<li{attrs(item)}><strong>{esc(a['flight_number'])}</strong> {esc(a['airline_name'])} · "
                f"{esc(a['origin'])} {offer.start:%H:%M} → {esc(a['dest'])} {arrives:%H:%M} · "
                f"{esc(offer.unit_name)} · ${offer.total_price_usd} {choose('Select')}</li>")
    item = {**common, "data-seat": offer.unit, "data-start": start}
    return (f"<article{attrs(item)}><h2>{esc(offer.unit_name)}</h2><p>{offer.start:%a %d %b, %H:%M}</p>"
            f"<p>${offer.unit_price_usd} each · ${offer.total_price_usd} total</p>{choose('Get tickets')}</article>")


_NO_RESULTS = {
    "unknown-venue": "We could not find that. Check the name and try again.",
    "not-served": "This one is not sold on our site.",
    "none-available": "Nothing is available for that search. Try another date or fewer people.",
}


def results(site: Site, urls: Urls, row: SandboxWebSession, found: Listing, message: str | None) -> HTMLResponse:
    again = link(urls.home, "New search", "new-search")
    if found.reason is not None:
        body = notice(message) + _search_summary(row) + f"<p>{esc(_NO_RESULTS[found.reason])}</p>" + again
        return page(site, "no-results", "No results", body, main={"data-reason": found.reason},
                    step=1, home=urls.home)
    action = urls.step("select", row.token)
    items = "".join(_item(site, offer, action) for offer in found.offers)
    lst = site.listing
    if lst.container == "table":
        listing = (f'<table id="{lst.container_id}"><thead><tr><th>Room</th><th>Sleeps</th><th>Rate</th>'
                   f"<th>Total</th><th></th></tr></thead><tbody>{items}</tbody></table>")
    else:
        listing = f'<{lst.container} id="{lst.container_id}">{items}</{lst.container}>'
    venue = found.offers[0].venue_name if site.scenario != "flight" else "Flights"
    body = notice(message) + _search_summary(row) + listing + f"<p>{again}</p>"
    return page(site, "results", venue, body, step=1, home=urls.home)


def _selection(row: SandboxWebSession) -> str:
    c = row.choice or {}
    rows = [("Where", c.get("venue_name")), ("What", c.get("unit_name")), ("When", c.get("start")),
            ("Until", c.get("end")), ("For", c.get("quantity")), ("Total", f"${c.get('total_usd')}")]
    return f'<section id="selection"{attrs({"data-offer": c.get("offer")})}>{summary(rows)}</section>'


def details(site: Site, urls: Urls, row: SandboxWebSession, values: Mapping[str, str],
            problems: Mapping[str, str] | None = None, message: str | None = None, status: int = 200) -> HTMLResponse:
    button = f'<button id="{esc(site.details_button_id)}" type="submit">{esc(site.details_button)}</button>'
    form = _post_form(site.details_form_id, urls.step("details", row.token),
                      fields(site.details_inputs, values, problems or {}) + button, {"novalidate": "novalidate"})
    back = link(urls.step("results", row.token), "Back to results", "back-to-results")
    body = notice(message) + _selection(row) + form_errors(problems or {}) + form + f"<p>{back}</p>"
    return page(site, "details", "Your details", body, status=status, step=2, home=urls.home)


def sold_out(site: Site, urls: Urls, row: SandboxWebSession, what: str) -> HTMLResponse:
    body = (f"<p>Sorry, {esc(what)} sold out while you were entering your details.</p>"
            f"<p>{link(urls.step('results', row.token), 'Back to results', 'back-to-results')}</p>")
    return page(site, "sold-out", "Just sold out", body, status=409, home=urls.home)


def _takeover(urls: Urls, row: SandboxWebSession) -> str:
    if row.takeover_token is None or row.takeover_used_at is not None:
        return ""
    continue_link = link(urls.resume(row.takeover_token), "Continue in another browser", "takeover")
    return f'<p class="takeover">Stuck? {continue_link} (this link works once).</p>'


def login_wall(site: Site, urls: Urls, row: SandboxWebSession, problem: str | None = None,
               status: int = 200) -> HTMLResponse:
    human = row.takeover_used_at is not None
    hint = ('<p id="sandbox-hint">Sandbox: sign in with any username and the password '
            "<code>sandbox</code>.</p>") if human else ""
    inputs = (field(Input("username", "username", "Username or email", "username", autocomplete="username"))
              + field(Input("password", "password", "Password", "password", type="password",
                            autocomplete="current-password"), problem=problem))
    form = _post_form("sign-in-form", urls.step("sign_in", row.token),
                      inputs + '<button id="sign-in" type="submit">Sign in</button>')
    body = (f"<p>Sign in to your {esc(site.brand)} account to complete this booking.</p>" + hint
            + form_errors({"password": problem} if problem else {}) + form + _takeover(urls, row))
    return page(site, "login-wall", "Sign in to continue", body, status=status, home=urls.home)


def _captcha_svg(answer: str) -> str:
    letters = "".join(
        f'<text x="{18 + 26 * n}" y="{38 + (n % 2) * 6}" transform="rotate({(-14, 11, -6, 16, -10)[n % 5]} '
        f'{18 + 26 * n} 34)" font-size="28" font-family="monospace" fill="#333">{esc(ch)}</text>'
        for n, ch in enumerate(answer)
    )
    noise = "".join(f'<line x1="{5 + 29 * n}" y1="{8 + 9 * (n % 4)}" x2="{40 + 27 * n}" y2="{50 - 7 * (n % 3)}" '
                    'stroke="#999" stroke-width="1.5"/>' for n in range(5))
    return (f'<div id="captcha-challenge"><svg xmlns="http://www.w3.org/2000/svg" width="160" height="60" '
            f'role="img" aria-label="distorted letters">{noise}{letters}</svg></div>')


def captcha(site: Site, urls: Urls, row: SandboxWebSession, problem: str | None = None,
            status: int = 200) -> HTMLResponse:
    answer = row.captcha_answer or ""
    human = row.takeover_used_at is not None
    hint = f'<p id="sandbox-hint">Sandbox: the answer is <code>{esc(answer)}</code>.</p>' if human else ""
    form = _post_form("captcha-form", urls.step("verify", row.token), field(
        Input("captcha_answer", "captcha-answer", "Type the letters you see", "captcha_answer", autocomplete="off"),
        problem=problem,
    ) + '<button id="verify" type="submit">Verify</button>')
    body = ("<p>Please confirm you are a person before we hold your booking.</p>" + _captcha_svg(answer) + hint
            + form_errors({"captcha_answer": problem} if problem else {}) + form + _takeover(urls, row))
    return page(site, "captcha", "Are you a robot?", body, status=status, home=urls.home)


def _hold_summary(shown: Mapping[str, Any]) -> str:
    rows = [("Booking", shown["venue_name"]), ("What", shown["unit_name"]), ("When", shown["start"]),
            ("Until", shown["end"]), ("Quantity", shown["quantity"]), ("Total", f"${shown['total_price_usd']}"),
            ("Status", shown["status"]), ("Confirmation", shown["confirmation"]),
            ("Hold expires", shown["expires_at"] if shown["status"] == "held" else None)]
    section = {"id": "hold-summary", "data-hold-id": shown["hold_id"], "data-status": shown["status"],
               "data-expires-at": shown["expires_at"] if shown["status"] == "held" else None,
               "data-total-usd": shown["total_price_usd"]}
    return f"<section{attrs(section)}>{summary(rows)}</section>"


_CARD_INPUTS = (
    Input("card_number", "card-number", "Card number", "card_number", autocomplete="cc-number"),
    Input("expiry", "card-expiry", "Expiry (MM/YY)", "expiry", autocomplete="cc-exp"),
    Input("cvc", "card-cvc", "CVC", "cvc", autocomplete="cc-csc"),
)


def checkout(
    site: Site, urls: Urls, token: str, shown: Mapping[str, Any], *,
    problems: Mapping[str, str] | None = None, declined: bool = False, status: int = 200,
) -> HTMLResponse:
    """The payment page; card fields are never filled back in, whatever was posted."""
    error = ""
    if declined:
        error = '<p id="payment-error" role="alert" data-reason="declined">Your card was declined. Try another card.</p>'
    elif problems:
        error = '<p id="payment-error" role="alert" data-reason="invalid">Check the card details below.</p>'
    inputs = "".join(field(i, "", (problems or {}).get(i.name)) for i in _CARD_INPUTS)
    form = _post_form("payment-form", urls.checkout(token), inputs
                      + f'<button id="pay" type="submit">Pay ${esc(shown["total_price_usd"])}</button>',
                      {"autocomplete": "off"})
    body = (_hold_summary(shown) + error + form
            + '<p class="fine-print">Test mode: card 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined.</p>')
    main = {"data-handoff-url": urls.checkout(token)}
    return page(site, "checkout", "Checkout", body, status=status, step=3, main=main, home=urls.home)


def confirmation(site: Site, urls: Urls, shown: Mapping[str, Any]) -> HTMLResponse:
    body = (f'<p>You are booked. Confirmation number <strong id="confirmation-number">{esc(shown["confirmation"])}'
            "</strong>.</p>" + _hold_summary(shown))
    return page(site, "confirmation", "Booking confirmed", body, home=urls.home)


def checkout_expired(site: Site, urls: Urls, shown: Mapping[str, Any]) -> HTMLResponse:
    body = (f"<p>This hold is {esc(shown['status'])}: it can no longer be paid, and what it held is "
            f"available to others again.</p>{_hold_summary(shown)}<p>{link(urls.home, 'Start a new search')}</p>")
    return page(site, "checkout-expired", "This checkout has expired", body, status=410, home=urls.home)


def message(site: Site | None, data_page: str, title: str, text: str, status: int,
            home: str = "", main: Mapping[str, object] | None = None) -> HTMLResponse:
    body = f"<p>{esc(text)}</p>" + (f"<p>{link(home, 'Start a new search')}</p>" if home else "")
    return page(site, data_page, title, body, status=status, home=home, main=main)
