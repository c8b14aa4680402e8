"""The payment page a handoff URL opens: a summary of the hold and a card form.

``GET /checkout/{token}`` shows the hold; ``POST`` with the form pays it. The test card
``4242 4242 4242 4242`` (any future expiry, any CVC) books the hold and shows its
confirmation; any other well-formed number is declined (402); an expired hold says so
(410). Card fields are validated, compared and dropped (:mod:`errand.sandbox.cards`):
they are never stored, logged or echoed back into the page. A payment is told to Errand
as a ``payment_completed`` provider event (:mod:`errand.sandbox.notify`). The web-only
providers have their own checkout pages (:mod:`errand.sandbox.web`).
"""

import html
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from errand.kit.db import Database
from errand.kit.errors import DomainError
from errand.models.sandbox_booking import SandboxBooking
from errand.sandbox import cards, inventory, service
from errand.sandbox.notify import ProviderEvents, hold_event

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Errand sandbox checkout</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 34rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }}
dt {{ color: #666; }}
label {{ display: block; margin: .8rem 0 .2rem; }}
input {{ font: inherit; padding: .4rem; width: 100%; box-sizing: border-box; }}
button {{ margin-top: 1.2rem; font: inherit; padding: .5rem 1.2rem; }}
.notice {{ padding: .6rem .8rem; border-radius: .3rem; background: #f3f3f3; }}
.error {{ background: #fde8ea; color: #8a0014; }}
.done {{ background: #e6f4ea; color: #0b5d23; }}
</style>
</head>
<body>
<h1>{title}</h1>
{notice}
{summary}
{form}
</body>
</html>
"""

_FORM = """<form method="post" autocomplete="off">
<label for="card_number">Card number</label>
<input id="card_number" name="card_number" inputmode="numeric" autocomplete="cc-number"
 placeholder="4242 4242 4242 4242" required>
<label for="expiry">Expiry (MM/YY)</label>
<input id="expiry" name="expiry" autocomplete="cc-exp" placeholder="12/30" required>
<label for="cvc">CVC</label>
<input id="cvc" name="cvc" inputmode="numeric" autocomplete="cc-csc" placeholder="123" required>
<button type="submit">Pay ${total}</button>
</form>
"""


def _render(
    title: str, booking: SandboxBooking | None, notice: str = "", kind: str = "", status: int = 200
) -> HTMLResponse:
    summary, form = "", ""
    if booking is not None:
        shown = service.summary(booking)
        rows = [
            ("Booking", shown["venue_name"]), ("Unit", shown["unit_name"]), ("Start", shown["start"]),
            ("Until", shown["end"]), ("Quantity", shown["quantity"]), ("Total", f"${shown['total_price_usd']}"),
            ("Status", shown["status"]), ("Confirmation", shown["confirmation"]),
            ("Hold expires", shown["expires_at"] if shown["status"] == "held" else None),
        ]
        summary = "<dl>" + "".join(
            f"<dt>{html.escape(label)}</dt><dd>{html.escape(str(value))}</dd>" for label, value in rows if value
        ) + "</dl>"
        if shown["status"] == "held":
            form = _FORM.format(total=html.escape(str(shown["total_price_usd"])))
    if notice:
        notice = f'<p class="notice {kind}" role="status">{html.escape(notice)}</p>'
    page = _PAGE.format(title=html.escape(title), notice=notice, summary=summary, form=form)
    return HTMLResponse(page, status_code=status)


def _show(booking: SandboxBooking) -> HTMLResponse:
    status = inventory.public_status(booking)
    if status == "booked":
        return _render("Booked", booking, f"Paid. Confirmation {booking.confirmation}.", "done")
    if status == "held":
        return _render("Checkout", booking)
    return _render("Hold expired" if status == "expired" else "No longer available", booking,
                   f"This hold is {status}; it can no longer be paid.", "error", 410)


def routes(db: Database, events: ProviderEvents) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/checkout/{token}", name="checkout_page")
    async def show(token: str) -> HTMLResponse:
        async with db.unit_of_work(read_only=True) as session:
            try:
                return _show(await inventory.load_by_handoff(session, token, lock=False))
            except DomainError as exc:
                return _render("Not found", None, exc.message, "error", 404)

    @router.post("/checkout/{token}")
    async def pay(request: Request, token: str) -> HTMLResponse:
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        number, problems = cards.card_number(form)
        async with db.unit_of_work() as session:
            try:
                booking = await inventory.load_by_handoff(session, token, lock=True)
            except DomainError as exc:
                return _render("Not found", None, exc.message, "error", 404)
            if inventory.public_status(booking) != "held":
                return _show(booking)
            if number is None:
                return _render("Checkout", booking, " ".join(problems.values()), "error", 400)
            try:
                booking = await service.pay(session, booking, number)
            except DomainError:
                return _render("Checkout", booking, "Your card was declined.", "error", 402)
            paid = hold_event("payment_completed", booking)
        events.send(paid)
        return _show(booking)

    return router
