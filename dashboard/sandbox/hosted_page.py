"""Alma's customer page, as the sandbox plays it: plain HTML forms (no JavaScript, no outside assets) and the
redirect back to the merchant's return_url."""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .model import INSTALLMENT_COUNTS, AttemptOutcome, ClosedAttempt, PaymentIntent, euros

MERCHANT_NAME = "Alma Ops test shop"
DEFAULT_INSTALLMENTS = 3

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;background:#fff3ef;margin:0;color:#1a1a1a}
main{max-width:26rem;margin:3rem auto;background:#fff;border-radius:12px;padding:2rem;
box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.1rem;margin:0 0 .25rem}.amount{font-size:2rem;font-weight:700;margin:.5rem 0 1rem}
.muted{color:#666;font-size:.9rem}fieldset{border:1px solid #eee;border-radius:8px;margin:1rem 0}
label{display:block;padding:.3rem 0}button{width:100%;padding:.8rem;margin-top:.6rem;border-radius:8px;
font-size:1rem;cursor:pointer;border:0}.approve{background:#fa5022;color:#fff}
.fail{background:#eee;color:#1a1a1a}.badge{display:inline-block;background:#1a1a1a;color:#fff;
border-radius:4px;padding:.1rem .4rem;font-size:.75rem}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body><main>{body}</main></body></html>"
    )


def render_payment_page(intent: PaymentIntent, action_path: str) -> str:
    choices = "".join(
        f"<label><input type='radio' name='installments' value='{count}'"
        f"{' checked' if count == DEFAULT_INSTALLMENTS else ''}> Pay in {count} installments of "
        f"{euros(-(-intent.amount // count), french=True)}</label>"
        for count in INSTALLMENT_COUNTS
    )
    description = f"<p class='muted'>{escape(intent.description)}</p>" if intent.description else ""
    body = (
        "<span class='badge'>TEST MODE</span>"
        f"<h1>{escape(MERCHANT_NAME)}</h1>"
        "<p class='muted'>asks you to pay with Alma</p>"
        f"<div class='amount'>{euros(intent.amount, french=True)}</div>{description}"
        f"<form method='post' action='{escape(action_path)}'>"
        f"<fieldset><legend>Installments</legend>{choices}</fieldset>"
        "<button class='approve' type='submit' name='decision' value='authorize'>Authorize test payment</button>"
        "<button class='fail' type='submit' name='decision' value='fail'>Fail test payment</button>"
        "</form>"
        "<p class='muted'>Sandbox page: no money moves. Authorizing or failing returns you to the shop.</p>"
    )
    return _page(f"Pay {euros(intent.amount, french=True)} with Alma", body)


# What the customer reads on a page already answered: (heading, explanation).
CLOSED_WORDING: dict[AttemptOutcome, tuple[str, str]] = {
    "approved": ("This payment is already approved", "You approved it with Alma; there is nothing more to do here."),
    "declined": ("This payment attempt already failed", "It was declined. The shop can send you a new link."),
    "expired": ("This payment link expired", "The time to answer ran out. The shop can send you a new link."),
    "canceled": ("This payment was canceled", "The shop canceled it; no money moves."),
    "replaced": ("This payment link was replaced", "A newer link was sent for the same payment; use that one."),
}


def render_attempt_closed(closed: ClosedAttempt) -> str:
    """A page answered, expired or canceled: what happened, and a way back to the shop (its return_url,
    escaped, and only if it is an http(s) address)."""
    heading, explanation = CLOSED_WORDING[closed.outcome]
    back = ""
    if urlsplit(closed.return_url).scheme.lower() in ("http", "https"):
        back = f"<p><a href='{escape(closed.return_url, quote=True)}'>Back to the shop</a></p>"
    body = (
        f"<span class='badge'>TEST MODE</span><h1>{escape(heading)}</h1>"
        f"<p class='muted'>{escape(explanation)}</p>{back}"
    )
    return _page(heading, body)


def render_link_gone() -> str:
    return _page(
        "Payment link no longer valid",
        "<h1>This test payment link is no longer valid</h1>"
        "<p class='muted'>The payment was already completed, failed, canceled or expired.</p>",
    )


def return_location(return_url: str, intent: PaymentIntent, redirect_status: str) -> str:
    """return_url plus Stripe's redirect parameters, keeping the return_url's own query and fragment."""
    parts = urlsplit(return_url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [
        ("payment_intent", intent.id),
        ("payment_intent_client_secret", intent.client_secret),
        ("redirect_pm_type", "alma"),
        ("redirect_status", redirect_status),
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))
