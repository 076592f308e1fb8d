"""HTTP wiring: Stripe's /v1 routes (auth, faults, idempotency, stats around each handler), Alma's customer
page, and the /_sandbox control endpoints.

The control endpoints reset the account and move its clock, so a web page the user happens to visit must not
reach them: they answer only requests that name the sandbox by a loopback Host (no DNS rebinding), carry no
foreign Origin, and send their parameters as JSON (a cross-site form post cannot set that content type
without a CORS preflight, which the sandbox never grants). A sandbox bound beyond loopback also requires its
`--control-token` in the `Sandbox-Control-Token` header of every control request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import re
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from . import handlers
from .errors import (
    StripeApiError,
    idempotency_mismatch,
    invalid_api_key,
    invalid_request,
    live_key_refused,
    malformed_request,
    missing_api_key,
    rate_limited,
    server_fault,
    shown,
    unrecognized_url,
)
from .faults import FaultInjector, FaultSettings, FaultSettingsError
from .forms import nest
from .handlers import Call, Handler
from .hosted_page import (
    DEFAULT_INSTALLMENTS,
    render_attempt_closed,
    render_link_gone,
    render_payment_page,
    return_location,
)
from .model import FAILED_CODE, INSTALLMENT_COUNTS, RequestRef
from .persistence import StateFile
from .serializers import API_VERSION, dumps
from .service import HOSTED_PAGE_PATH, SandboxConfig, SandboxService, StoredResponse
from .transport import drop_connection

log = logging.getLogger("dashboard.sandbox")

REQUEST_ID = "sandbox.request_id"  # scope key
TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")
SAVE_INTERVAL_SECONDS = 1.0
SAVE_PACING = 10
WARM_SLICE = 200  # intents encoded per event-loop turn: a few milliseconds
ALL_METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH"]
MAX_BODY_BYTES = 1024 * 1024  # an Alma request is a few kB; Stripe, too, refuses oversized bodies
DAY = 24 * 3600
MAX_CLOCK_AHEAD_SECONDS = 10 * 365 * DAY  # the sandbox clock runs at most ~10 years ahead of real time
MAX_DEMO_INTENTS = 1_000_000  # a reset seeding more would exhaust memory, not test anything
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
CONTROL_TOKEN_HEADER = "sandbox-control-token"  # noqa: S105 (a header name)
_CONTENT_LENGTH = re.compile(r"[0-9]{1,15}")
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,18}")

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
    ("/v1/refunds", {"GET": handlers.list_refunds, "POST": handlers.create_refund}),
    ("/v1/refunds/{id}", {"GET": handlers.retrieve_refund}),
    ("/v1/balance_transactions", {"GET": handlers.list_balance_transactions}),
    ("/v1/balance_transactions/{id}", {"GET": handlers.retrieve_balance_transaction}),
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
                pairs += parse_qsl((await read_body(request)).decode("utf-8", "replace"), keep_blank_values=True)
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
            if error.malformed:
                log.warning("refused %s %s (%s): %s", method, template, request_id, error.message)
            return stripe_json(error.status, dumps(error.body()))

    return endpoint


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused (413, Stripe's JSON) once it exceeds `limit`, before all of it is read."""
    declared = request.headers.get("content-length")
    too_large = malformed_request(f"The request body is too large: at most {limit:,} bytes are accepted.", status=413)
    if declared is not None and (not _CONTENT_LENGTH.fullmatch(declared) or int(declared) > limit):
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def one_line(error: BaseException) -> str:
    """An unexpected exception as one log line: its type, where it was raised, and its message cut short."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__name__}{where}: {shown(str(error), 200)}"


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
    except Exception as error:  # a sandbox bug must still answer as Stripe's 500 does, not as a dropped request
        log.error("handler %s failed: %s", handler.__name__, one_line(error))
        return 500, dumps(server_fault(injected=False).body()), False


# ---- Alma's customer page ----------------------------------------------------------------------------------
def hosted_page_endpoint(service: SandboxService) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        token = request.path_params["token"]
        intent = service.sandbox.intent_for_token(token)
        if intent is None:
            closed = service.sandbox.closed_attempt(token)
            if closed is not None:  # answered, expired, canceled: say so, and lead back to the shop
                return HTMLResponse(render_attempt_closed(closed), status_code=410)
            return HTMLResponse(render_link_gone(), status_code=404)
        if request.method == "GET":
            return HTMLResponse(render_payment_page(intent, HOSTED_PAGE_PATH + token))
        form = dict(parse_qsl((await read_body(request)).decode("utf-8", "replace"), keep_blank_values=True))
        decision = form.get("decision")
        chosen = form.get("installments", str(DEFAULT_INSTALLMENTS))
        installments = next((count for count in INSTALLMENT_COUNTS if chosen == str(count)), None)
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
def _hostname(netloc: str) -> str:
    """`localhost:12111` -> `localhost`, `[::1]:80` -> `::1`; "" for anything unparseable."""
    try:
        return urlsplit("//" + netloc).hostname or ""
    except ValueError:
        return ""


@dataclass(frozen=True)
class ControlAccess:
    """Who may call the control endpoints: see the module docstring."""

    hosts: frozenset[str]  # Host names accepted: loopback, plus the public URL's when bound beyond it
    token: str | None

    def check(self, request: Request) -> None:
        host = request.headers.get("host", "")
        if _hostname(host) not in self.hosts:
            raise invalid_request(
                f"Control requests must address the sandbox by a loopback name (localhost, 127.0.0.1 or [::1]); "
                f"Host {shown(host)!r} refused.",
                status=403,
            )
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
            raise invalid_request(f"Cross-origin control requests are refused (Origin {shown(origin)!r}).", status=403)
        if self.token is not None:
            given = request.headers.get(CONTROL_TOKEN_HEADER, "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                raise invalid_request(
                    "This sandbox requires its control token in the Sandbox-Control-Token header.", status=401
                )


async def control_params(request: Request) -> dict[str, Any]:
    """GET: the query (those endpoints only read). POST: a JSON object and nothing else."""
    if request.method != "POST":
        return dict(request.query_params)
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise invalid_request(
            "Control requests that change the sandbox take a JSON body (Content-Type: application/json).",
            status=415,
        )
    body = await read_body(request)
    if not body.strip():
        return {}
    try:
        loaded = json.loads(body)
    except ValueError:
        raise invalid_request("The body is not valid JSON.") from None
    if not isinstance(loaded, dict):
        raise invalid_request("A JSON body must be an object of parameters.")
    return loaded


def whole_number(value: Any, name: str, lowest: int, highest: int, why: str = "") -> int:
    """A JSON integer (or its ASCII decimal text) within lowest..highest; 1e24, 1.5 and true are refused."""
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_request(f"{name} must be a whole number, got {shown(repr(value))}.", param=name)
    if not lowest <= value <= highest:
        raise invalid_request(f"{name} must be between {lowest:,} and {highest:,}{why}, got {value:,}.", param=name)
    return value


ControlEndpoint = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def control_endpoint(access: ControlAccess, answer: ControlEndpoint) -> Endpoint:
    """Checked caller, parameters in (query or JSON), JSON out; a refusal answers Stripe's error JSON."""

    async def endpoint(request: Request) -> Response:
        try:
            access.check(request)
            return JSONResponse(await answer(await control_params(request)))
        except StripeApiError as error:
            return JSONResponse(error.body(), status_code=error.status)
        except FaultSettingsError as error:
            return JSONResponse(invalid_request(str(error)).body(), status_code=400)

    return endpoint


def control_routes(
    service: SandboxService, access: ControlAccess, spawn: Callable[[Coroutine[Any, Any, None]], None]
) -> list[Route]:
    def clock_now() -> dict[str, Any]:
        return {"now": service.now(), "offset": service.clock.offset}

    async def health(params: dict[str, Any]) -> dict[str, Any]:
        sandbox = service.sandbox
        return {"status": "ok", "intents": len(sandbox.intents), "events": len(sandbox.events)}

    async def clock(params: dict[str, Any]) -> dict[str, Any]:
        return clock_now()

    async def advance(params: dict[str, Any]) -> dict[str, Any]:
        why = " (the sandbox clock only moves forward, and at most 10 years at a time)"
        seconds = whole_number(params.get("seconds"), "seconds", 0, MAX_CLOCK_AHEAD_SECONDS, why)
        room = MAX_CLOCK_AHEAD_SECONDS - service.clock.offset
        if seconds > room:
            raise invalid_request(
                f"seconds must be at most {room:,}: the sandbox clock runs at most {MAX_CLOCK_AHEAD_SECONDS:,} "
                f"seconds (10 years) ahead of real time, and it is {service.clock.offset:,} ahead already.",
                param="seconds",
            )
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
        count = whole_number(params.get("seed_demo", 0), "seed_demo", 0, MAX_DEMO_INTENTS)
        service.reset(count)
        spawn(warm_encodings(service))
        return {"status": "reset", "intents": len(service.sandbox.intents), "now": service.now()}

    def route(path: str, answer: ControlEndpoint, method: str = "GET") -> Route:
        return Route(path, control_endpoint(access, answer), methods=[method])

    return [
        route("/_sandbox/health", health),
        route("/_sandbox/clock", clock),
        route("/_sandbox/clock/advance", advance, "POST"),
        route("/_sandbox/stats", stats),
        route("/_sandbox/faults", faults, "POST"),
        route("/_sandbox/reset", reset, "POST"),
    ]


def control_access(config: SandboxConfig) -> ControlAccess:
    hosts = set(LOOPBACK_HOSTS)
    if config.public_url:
        hosts.add(_hostname(urlsplit(config.public_url).netloc))
    if config.host not in ("0.0.0.0", "::", ""):  # noqa: S104 (a comparison)
        hosts.add(config.host.strip("[]").lower())
    return ControlAccess(frozenset(hosts), config.control_token)


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
        header = (b"request-id", request_id.encode())
        started = False

        async def send_with_request_id(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            self.service.sweep()
            await self.app(scope, receive, send_with_request_id)
        except Exception as error:  # whatever a request does, it gets Stripe's JSON and the log one line
            log.error("%s %s (%s) failed: %s", scope.get("method"), scope.get("path"), request_id, one_line(error))
            if not started:
                response = stripe_json(500, dumps(server_fault(injected=False).body()))
                await response(scope, receive, send_with_request_id)


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

    routes.extend(control_routes(service, control_access(service.config), spawn))

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

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.add_middleware(SandboxMiddleware, service=service)
    return app


async def http_error(request: Request, error: Exception) -> Response:
    """Routing's own refusals (404 outside /v1, 405) as Stripe-shaped JSON rather than plain text."""
    assert isinstance(error, HTTPException)
    return JSONResponse(invalid_request(str(error.detail), status=error.status_code).body(), error.status_code)


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
