"""HTTP wiring: Stripe's /v1 routes (auth, faults, idempotency, stats around each handler), Alma's customer
page, and the /_sandbox control endpoints."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from . import handlers
from .errors import (
    StripeApiError,
    idempotency_mismatch,
    invalid_api_key,
    live_key_refused,
    missing_api_key,
    rate_limited,
    server_fault,
    unrecognized_url,
)
from .faults import FaultInjector, FaultSettings, FaultSettingsError
from .forms import nest
from .handlers import Call, Handler
from .hosted_page import DEFAULT_INSTALLMENTS, render_link_gone, render_payment_page, return_location
from .model import FAILED_CODE, INSTALLMENT_COUNTS, RequestRef
from .persistence import StateFile
from .serializers import API_VERSION, dumps
from .service import HOSTED_PAGE_PATH, SandboxService, StoredResponse
from .transport import drop_connection

log = logging.getLogger("dashboard.sandbox")

REQUEST_ID = "sandbox.request_id"  # scope key
TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")
SAVE_INTERVAL_SECONDS = 1.0
SAVE_PACING = 10
WARM_SLICE = 200  # intents encoded per event-loop turn: a few milliseconds
ALL_METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH"]

# (route template, {method: handler}). Order matters: `search` before `{id}`.
STRIPE_ROUTES: tuple[tuple[str, dict[str, Handler]], ...] = (
    ("/v1/payment_intents", {"GET": handlers.list_payment_intents, "POST": handlers.create_payment_intent}),
    ("/v1/payment_intents/search", {"GET": handlers.search_payment_intents}),
    ("/v1/payment_intents/{id}", {"GET": handlers.retrieve_payment_intent, "POST": handlers.update_payment_intent}),
    ("/v1/payment_intents/{id}/confirm", {"POST": handlers.confirm_payment_intent}),
    ("/v1/payment_intents/{id}/cancel", {"POST": handlers.cancel_payment_intent}),
    ("/v1/payment_intents/{id}/capture", {"POST": handlers.capture_payment_intent}),
    ("/v1/payment_methods/{id}", {"GET": handlers.retrieve_payment_method}),
    ("/v1/charges/{id}", {"GET": handlers.retrieve_charge}),
    ("/v1/events", {"GET": handlers.list_events}),
    ("/v1/events/{id}", {"GET": handlers.retrieve_event}),
    ("/v1/{path:path}", {}),  # anything else: Stripe's "Unrecognized request URL"
)


def stripe_json(status: int, body: bytes, extra_headers: dict[str, str] | None = None) -> Response:
    headers = {"Stripe-Version": API_VERSION, **(extra_headers or {})}
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def authenticate(authorization: str | None) -> None:
    """Bearer (what stripe-python sends) or Basic with the key as user name, as Stripe accepts both."""
    key = ""
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer":
            key = credentials.strip()
        elif scheme.lower() == "basic":
            with contextlib.suppress(ValueError):
                key = base64.b64decode(credentials).decode().partition(":")[0]
    if not key:
        raise missing_api_key()
    if key.startswith(LIVE_KEY_PREFIXES):
        raise live_key_refused(key)
    if not key.startswith(TEST_KEY_PREFIXES) or len(key) <= len("sk_test_"):
        raise invalid_api_key(key)


Endpoint = Callable[[Request], Awaitable[Response]]


def stripe_endpoint(service: SandboxService, template: str, by_method: dict[str, Handler]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        method = request.method
        service.stats[f"{method} {template}"] += 1
        request_id: str = request.scope[REQUEST_ID]
        try:
            authenticate(request.headers.get("authorization"))
            fault = service.faults.draw()
            if fault == "drop" and await drop_connection(request.scope):
                return Response(status_code=500)  # never sent: the connection is gone
            if fault == "429":
                raise rate_limited()
            if fault is not None:
                raise server_fault()
            handler = by_method.get(method)
            if handler is None:
                raise unrecognized_url(method, request.url.path)
            pairs = parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)
            if method == "POST":
                pairs += parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
            idempotency_key = request.headers.get("idempotency-key") if method == "POST" else None
            headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
            fingerprint = (method, request.url.path, tuple(sorted(pairs)))
            if idempotency_key and (stored := service.idempotent.get(idempotency_key)) is not None:
                if stored.fingerprint != fingerprint:
                    raise idempotency_mismatch(idempotency_key)
                replay = {**headers, "Idempotent-Replayed": "true", "Original-Request": stored.request_id}
                return stripe_json(stored.status, stored.body, replay)
            status, body, executed = run_handler(
                service, handler, request, pairs, RequestRef(request_id, idempotency_key)
            )
            if idempotency_key and executed:
                service.idempotent[idempotency_key] = StoredResponse(fingerprint, status, body, request_id)
            if method == "POST" and status == 200:
                service.dirty = True
            return stripe_json(status, body, headers)
        except StripeApiError as error:
            return stripe_json(error.status, dumps(error.body()))

    return endpoint


def run_handler(
    service: SandboxService, handler: Handler, request: Request, pairs: list[tuple[str, str]], ref: RequestRef
) -> tuple[int, bytes, bool]:
    """(status, body, executed). As at Stripe, only an answer from an endpoint that started executing is
    kept for its idempotency key: a parameter that failed validation (the error names it) or a server
    fault leaves the key free for a corrected retry."""
    call = Call(service.sandbox, service.serializer, nest(pairs), request.path_params, service.now(), ref)
    try:
        return 200, handler(call), True
    except StripeApiError as error:
        return error.status, dumps(error.body()), error.param is None and error.status < 500
    except Exception:  # a sandbox bug must still answer as Stripe's 500 does, not as a dropped request
        log.exception("handler %s failed", handler.__name__)
        return 500, dumps(server_fault(injected=False).body()), False


# ---- Alma's customer page ----------------------------------------------------------------------------------
def hosted_page_endpoint(service: SandboxService) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        token = request.path_params["token"]
        intent = service.sandbox.intent_for_token(token)
        if intent is None:
            return HTMLResponse(render_link_gone(), status_code=404)
        if request.method == "GET":
            return HTMLResponse(render_payment_page(intent, HOSTED_PAGE_PATH + token))
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        decision = form.get("decision")
        chosen = form.get("installments", str(DEFAULT_INSTALLMENTS))
        installments = int(chosen) if chosen.isdecimal() else None
        if decision not in ("authorize", "fail") or installments not in INSTALLMENT_COUNTS:
            return HTMLResponse(render_payment_page(intent, HOSTED_PAGE_PATH + token), status_code=400)
        assert intent.redirect is not None
        return_url = intent.redirect.return_url
        if decision == "authorize":
            intent = service.sandbox.authorize(intent.id, installments, service.now())
            redirect_status = "succeeded"
        else:
            intent = service.sandbox.fail_attempt(intent.id, FAILED_CODE, service.now())
            redirect_status = "failed"
        service.dirty = True
        return RedirectResponse(return_location(return_url, intent, redirect_status), status_code=303)

    return endpoint


# ---- /_sandbox control -------------------------------------------------------------------------------------
class ControlError(ValueError):
    """A control request the sandbox refuses: answered 400 with the reason."""


async def control_params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if body:
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                loaded = json.loads(body)
            except ValueError:
                raise ControlError("The body is not valid JSON.") from None
            if not isinstance(loaded, dict):
                raise ControlError("A JSON body must be an object of parameters.")
            params.update(loaded)
        else:
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def whole_number(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ControlError(f"{name} must be a whole number, got {value!r}.") from None


ControlEndpoint = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def control_endpoint(answer: ControlEndpoint) -> Endpoint:
    """Parameters in (query, form or JSON), JSON out; a refused request answers 400 with the reason."""

    async def endpoint(request: Request) -> Response:
        try:
            return JSONResponse(await answer(await control_params(request)))
        except (ControlError, FaultSettingsError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)

    return endpoint


def control_routes(service: SandboxService, spawn: Callable[[Coroutine[Any, Any, None]], None]) -> list[Route]:
    def clock_now() -> dict[str, Any]:
        return {"now": service.now(), "offset": service.clock.offset}

    async def health(params: dict[str, Any]) -> dict[str, Any]:
        sandbox = service.sandbox
        return {"status": "ok", "intents": len(sandbox.intents), "events": len(sandbox.events)}

    async def clock(params: dict[str, Any]) -> dict[str, Any]:
        return clock_now()

    async def advance(params: dict[str, Any]) -> dict[str, Any]:
        seconds = whole_number(params.get("seconds"), "seconds")
        if seconds < 0:
            raise ControlError("seconds must not be negative: the sandbox clock only moves forward.")
        service.clock.offset += seconds
        service.dirty = True
        service.sweep()
        return clock_now()

    async def stats(params: dict[str, Any]) -> dict[str, Any]:
        return {"requests": dict(service.stats)}

    async def faults(params: dict[str, Any]) -> dict[str, Any]:
        settings = FaultSettings.from_params(params)
        service.faults = FaultInjector(settings)
        return settings.as_json()

    async def reset(params: dict[str, Any]) -> dict[str, Any]:
        count = whole_number(params.get("seed_demo", 0) or 0, "seed_demo")
        service.reset(count)
        spawn(warm_encodings(service))
        return {"status": "reset", "intents": len(service.sandbox.intents), "now": service.now()}

    return [
        Route("/_sandbox/health", control_endpoint(health)),
        Route("/_sandbox/clock", control_endpoint(clock)),
        Route("/_sandbox/clock/advance", control_endpoint(advance), methods=["POST"]),
        Route("/_sandbox/stats", control_endpoint(stats)),
        Route("/_sandbox/faults", control_endpoint(faults), methods=["POST"]),
        Route("/_sandbox/reset", control_endpoint(reset), methods=["POST"]),
    ]


# ---- assembly ----------------------------------------------------------------------------------------------
class SandboxMiddleware:
    """Before any request: give it a Request-Id and let the sandbox clock's deadlines fire (lazily, each at
    its own instant). Pure ASGI: a BaseHTTPMiddleware would cost more than most handlers."""

    def __init__(self, app: Any, service: SandboxService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.service.request_ids.new("req_", 14)
        scope[REQUEST_ID] = request_id
        self.service.sweep()
        header = (b"request-id", request_id.encode())

        async def send_with_request_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_request_id)


def build_app(service: SandboxService) -> Starlette:
    routes = [
        Route(template, stripe_endpoint(service, template, by_method), methods=ALL_METHODS)
        for template, by_method in STRIPE_ROUTES
    ]
    routes.append(Route(HOSTED_PAGE_PATH + "{token}", hosted_page_endpoint(service), methods=["GET", "POST"]))
    background: set[asyncio.Task[None]] = set()

    def spawn(work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        background.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(background.discard)

    routes.extend(control_routes(service, spawn))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        spawn(warm_encodings(service))
        if service.state_file:
            spawn(save_periodically(service, service.state_file))
        try:
            yield
        finally:
            for task in list(background):
                task.cancel()
            service.save()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(SandboxMiddleware, service=service)
    return app


async def warm_encodings(service: SandboxService) -> None:
    """A seeded or loaded account has nothing encoded yet, and a cold page of 100 costs several times a warm
    one. Encode everything newest first, a slice per loop turn so requests keep flowing in between; stop if
    a reset replaced the account meanwhile."""
    serializer = service.serializer
    intent_ids = list(service.sandbox.intent_index.newest_first())
    for start in range(0, len(intent_ids), WARM_SLICE):
        if service.serializer is not serializer:
            return
        serializer.warm(intent_ids[start : start + WARM_SLICE])
        await asyncio.sleep(0)


async def save_periodically(service: SandboxService, state_file: StateFile) -> None:
    """Write the state file soon after changes. The snapshot is taken between two requests (milliseconds);
    the encoding runs in a worker thread, so requests go on meanwhile, sharing the CPU with it. The pause
    after each save grows with its cost, so saving takes at most ~1/SAVE_PACING of the time."""
    pause = SAVE_INTERVAL_SECONDS
    while True:
        await asyncio.sleep(pause)
        if not service.dirty:
            continue
        started = time.perf_counter()
        try:
            await asyncio.to_thread(state_file.save, service.snapshot())
        except OSError:
            log.exception("saving %s failed; trying again later", state_file.path)
            service.dirty = True
        pause = max(SAVE_INTERVAL_SECONDS, SAVE_PACING * (time.perf_counter() - started))
