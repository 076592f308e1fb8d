"""Streamlit glue: the services and their caching, shared by the entry script and every page.

With ui_access (sign-in, who may see what), ui_chrome (banner, sidebar) and ui_widgets (badges, tables,
pickers), the only modules under dashboard/ that import streamlit; none holds a business rule. This one keeps
the services (dashboard.wiring) and one sync loop (dashboard.sync_loop) per process (st.cache_resource), each
bounded store query's answer per store change (st.cache_data), and each form's submission id per session
(dashboard.actions).
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, fields
from typing import Any, Literal, cast

import pandas as pd
import streamlit as st

from dashboard.local_sandbox import SandboxStartError
from dashboard.settings import Settings, load_settings
from dashboard.store import IntentFilter, IntentPage, IntentTotals, OverviewFigures, PageKey, SortColumn
from dashboard.sync import AlmaSync
from dashboard.sync_loop import SyncLoop, WorkerSyncs
from dashboard.wiring import Services, build_services

log = logging.getLogger(__name__)

# --- settings -----------------------------------------------------------------------------------------


def _secrets_mapping() -> dict[str, object]:
    """st.secrets as a plain dict, or {} when no secrets.toml exists (environment-only deployments)."""
    try:
        return st.secrets.to_dict()
    except FileNotFoundError:  # StreamlitSecretNotFoundError is one
        return {}


@st.cache_resource(show_spinner=False)
def app_settings() -> Settings:
    """Without ALMA_OPS_PUBLIC_URL anywhere, customers come back to this server's own port on localhost
    (`make run PORT=8600` must not send them to 8501)."""
    env, secrets = dict(os.environ), _secrets_mapping()
    if not env.get("ALMA_OPS_PUBLIC_URL") and not secrets.get("ALMA_OPS_PUBLIC_URL"):
        env["ALMA_OPS_PUBLIC_URL"] = f"http://localhost:{st.get_option('server.port')}"
    return load_settings(env, secrets)


# --- services -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppServices(Services):
    """What pages use: the mode's services (dashboard.wiring) and this process's sync loop, or, with
    ALMA_OPS_SYNC=worker, the reader that follows the worker's syncs."""

    sync_loop: SyncLoop | WorkerSyncs

    @property
    def worker_syncs(self) -> bool:
        return isinstance(self.sync_loop, WorkerSyncs)


def _release(services: AppServices) -> None:
    services.sync_loop.stop()
    services.close()


@st.cache_resource(show_spinner="Starting Alma Ops…", on_release=_release)
def services() -> AppServices:
    """Built once per process and shared by every session: one gateway, one store, one sync thread (none in
    worker mode). A worker-mode dashboard in local mode attaches to the worker's sandbox (ALMA_OPS_SANDBOX_URL)
    rather than starting one: a sandbox of its own would be an account the worker never syncs."""
    settings = app_settings()
    worker = settings.sync_mode == "worker"
    core = build_services(settings, may_start_sandbox=not worker)
    parts = {field.name: getattr(core, field.name) for field in fields(core)}
    if worker:
        return AppServices(**parts, sync_loop=WorkerSyncs(core.store))
    return AppServices(**parts, sync_loop=SyncLoop(AlmaSync.for_services(core), core.settings.refresh_seconds))


_TRACEBACK = "Traceback (most recent call last):"
_CAUSE_MAX_CHARS = 300


def startup_problem(error: BaseException) -> str:
    """One line for the page; the whole story (a sandbox's stderr can be a long traceback) goes to the log.
    From a traceback the page keeps its last line, the exception itself."""
    log.error("Alma Ops could not start", exc_info=error)
    head, _, traceback = str(error).partition(_TRACEBACK)
    lines = head.strip().splitlines() or [type(error).__name__]
    cause = lines[0].rstrip(": ")
    if traceback.strip():
        cause += f": {traceback.strip().splitlines()[-1]}"
    what = "The local sandbox did not start" if isinstance(error, SandboxStartError) else "Alma Ops could not start"
    return f"{what} — {cause[:_CAUSE_MAX_CHARS]} (details in the server log)."


def sandbox_unreachable_text(error: OSError) -> str:
    cause = getattr(error, "reason", None) or error  # URLError keeps the socket's error in .reason
    return f"The local sandbox is not answering ({cause}). Restart it, or the app, and reload the page."


def now(app: AppServices) -> int:
    """The services' clock. With the sandbox it reads down, the data's own time (the last sync), so pages still
    draw what is stored (the freshness banner says why it is old); a clear message only when nothing is."""
    try:
        return app.clock.now()
    except OSError as error:
        if (synced_at := app.store.last_synced_at()) is not None:
            return synced_at
        st.error(sandbox_unreachable_text(error))
        st.stop()


# --- store reads: each bounded query once per store change --------------------------------------------


@st.cache_data(show_spinner=False, max_entries=256)
def _stored(db: str, generation: int, query: str, args: tuple[Any, ...], options: tuple[tuple[str, Any], ...]) -> Any:
    """One store query's answer for one store generation. The key is the sync loop's generation (in worker
    mode the store's version row, which the worker's writes move): a rerun with nothing new reads nothing,
    and every session of this process shares the answer."""
    return getattr(services().store, query)(*args, **dict(options))


def _read(query: str, *args: Any, **options: Any) -> Any:
    app = services()
    return _stored(app.settings.db, app.sync_loop.generation, query, args, tuple(sorted(options.items())))


def overview_figures(where: IntentFilter) -> OverviewFigures:
    return cast(OverviewFigures, _read("overview_figures", where, services().settings.timezone))


def count_intents(where: IntentFilter) -> int:
    return cast(int, _read("count_intents", where))


def intents_frame(
    where: IntentFilter,
    *,
    newest: Literal["created", "updated_at"] = "created",
    soonest: Literal["expires_at", "capture_deadline"] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """The rows of a short list (intent_frame.COLUMNS): bounded by `where` and `limit`."""
    return cast(pd.DataFrame, _read("intents_frame", where=where, newest=newest, soonest=soonest, limit=limit))


def intents_page(
    where: IntentFilter, *, sort: SortColumn, descending: bool, after: PageKey | None, limit: int
) -> IntentPage:
    """One keyset page of a filter (uncounted: intent_totals counts)."""
    return cast(
        IntentPage,
        _read("intents_page", where, sort=sort, descending=descending, after=after, limit=limit, counted=False),
    )


def intent_totals(where: IntentFilter) -> IntentTotals:
    return cast(IntentTotals, _read("intent_totals", where))


def money_moves(start: int, end: int, *, include_test: bool) -> pd.DataFrame:
    """The balance transactions of [start, end) (the date money moved)."""
    return cast(pd.DataFrame, _read("money_moves", start, end, include_test=include_test))


def sync_after_write() -> None:
    """A write went out through the gateway; bring its effect into the store before drawing."""
    services().sync_loop.sync_now()


# --- writes: who acts, and each form's submission ----------------------------------------------------


class SessionSubmissions:
    """actions.Submissions kept in the session: a nonce per form, so replays of one submission (double click,
    rerun) share the idempotency key and Stripe creates one object. Only renew() starts a new submission."""

    def current(self, form: str) -> str:
        key = f"submission:{form}"
        if key not in st.session_state:
            st.session_state[key] = secrets.token_hex(16)
        return str(st.session_state[key])

    def renew(self, form: str) -> None:
        st.session_state[f"submission:{form}"] = secrets.token_hex(16)


SUBMISSIONS = SessionSubmissions()
