"""Stripe's error answers: one exception type carrying status + the `error` object, and a constructor per
case so every message is worded in one place."""

from __future__ import annotations

from typing import Any

DOC_BASE = "https://docs.stripe.com/error-codes/"


def doc_url(code: str) -> str:
    return DOC_BASE + code.replace("_", "-")


class StripeApiError(Exception):
    """Raised anywhere in the sandbox; the app renders it as `{"error": {...}}` with `status`."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
        malformed: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.code = code
        self.param = param
        self.extra = extra or {}  # e.g. the payment_intent Stripe attaches to state errors
        self.malformed = malformed  # a request no client library would send: the sandbox logs one line

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = doc_url(self.code)
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


def invalid_request(
    message: str, *, code: str | None = None, param: str | None = None, status: int = 400
) -> StripeApiError:
    return StripeApiError(status, "invalid_request_error", message, code=code, param=param)


def malformed_request(message: str, *, param: str | None = None, status: int = 400) -> StripeApiError:
    """A request no Stripe client would send (nesting 1,000 levels deep, a 10 MB body): refused like any bad
    parameter, and also logged, since it is more likely an attack or a broken client than a typo."""
    return StripeApiError(status, "invalid_request_error", message, param=param, malformed=True)


def parameter_missing(param: str) -> StripeApiError:
    return invalid_request(f"Missing required param: {param}.", code="parameter_missing", param=param)


def parameter_unknown(param: str) -> StripeApiError:
    return invalid_request(f"Received unknown parameter: {param}", code="parameter_unknown", param=param)


def parameter_invalid(param: str, message: str, code: str | None = None) -> StripeApiError:
    return invalid_request(message, code=code, param=param)


def resource_missing(noun: str, object_id: str, param: str) -> StripeApiError:
    return invalid_request(f"No such {noun}: '{object_id}'", code="resource_missing", param=param, status=404)


def unexpected_state(message: str) -> StripeApiError:
    return invalid_request(message, code="payment_intent_unexpected_state")  # handlers attach the intent


def unrecognized_url(method: str, path: str) -> StripeApiError:
    return invalid_request(
        f"Unrecognized request URL ({method}: {path}). The Alma sandbox answers only the Alma subset of "
        "Stripe's v1 API.",
        status=404,
    )


def masked_key(key: str) -> str:
    """Stripe's masking: the key's prefix, one `*` per hidden character, the last four characters."""
    prefix_end = key.find("_", key.find("_") + 1) + 1 if key.count("_") >= 2 else 0
    hidden = max(len(key) - prefix_end - 4, 0)
    return key[:prefix_end] + "*" * hidden + key[prefix_end + hidden :]


def missing_api_key() -> StripeApiError:
    return StripeApiError(
        401,
        "invalid_request_error",
        "You did not provide an API key. Provide it in the Authorization header using Bearer auth "
        "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
    )


def invalid_api_key(key: str) -> StripeApiError:
    return StripeApiError(401, "invalid_request_error", f"Invalid API Key provided: {masked_key(key)}")


def live_key_refused(key: str) -> StripeApiError:
    return StripeApiError(
        401,
        "invalid_request_error",
        f"The Alma sandbox takes test keys only (sk_test_ or rk_test_); live key refused: {masked_key(key)}",
    )


def idempotency_mismatch(key: str) -> StripeApiError:
    return StripeApiError(
        400,
        "idempotency_error",
        "Keys for idempotent requests can only be used with the same parameters they were first used with. "
        f"Try using a key other than '{key}' if you meant to execute a different request.",
    )


def rate_limited() -> StripeApiError:
    return StripeApiError(
        429,
        "invalid_request_error",
        "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
        code="rate_limit",
    )


def server_fault(injected: bool = True) -> StripeApiError:
    cause = "an injected fault" if injected else "a sandbox bug; its log names it"
    return StripeApiError(500, "api_error", f"Something went wrong on the sandbox's end ({cause}).")


def shown(value: str, limit: int = 40) -> str:
    """A caller's value as an error message echoes it (as Stripe's do), cut short: a 10 MB parameter must not
    come back as a 10 MB error."""
    return value if len(value) <= limit else value[:limit] + "..."
