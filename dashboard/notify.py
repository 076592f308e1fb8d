"""Alert delivery through apprise: one URL per target (Slack, Teams, email, a JSON webhook, ...).

The URLs hold tokens and passwords, so they are shown only masked (`mask_url`), and whatever apprise or the
HTTP library would log about them passes through a filter that blanks their secret parts first. `send`
never raises: it reports, target by target, what went out, so the caller can try the failed ones again.
"""

from __future__ import annotations

import hashlib
import logging
import re
import urllib.parse
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import apprise

from dashboard.alerts import Notification
from dashboard.settings import URLS_ENV, SettingsError

log = logging.getLogger(__name__)

_NOTIFY_TYPES = {
    "firing": apprise.NotifyType.WARNING,
    "reminder": apprise.NotifyType.WARNING,
    "resolved": apprise.NotifyType.SUCCESS,
    "test": apprise.NotifyType.INFO,
}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SHORTEST_SECRET = 4  # shorter URL parts ("api", "v1", a port) are blanked only as part of longer ones


def mask_url(url: str) -> str:
    """What apprise itself prints with privacy on (tokens as T...Q, passwords as ****), without the query
    string, and with any path segment apprise left whole shortened the same way (a generic webhook's path
    may be its token); only the scheme for a URL apprise cannot read."""
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        scheme = _SCHEME.match(url)
        return f"{scheme.group(1)}://…" if scheme else "…"
    parts = urllib.parse.urlsplit(str(plugin.url(privacy=True)))
    path = "/".join(_shortened(segment) for segment in parts.path.split("/"))
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _shortened(segment: str) -> str:
    return segment if len(segment) < _SHORTEST_SECRET or "..." in segment else f"{segment[0]}...{segment[-1]}"


def target_id(url: str) -> str:
    """A stable name for one target that reveals nothing of its URL (what the store keeps per delivery)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _secret_parts(url: str) -> set[str]:
    """Every piece of a URL that could be a secret: the whole URL, user, password, host (Slack's first
    token sits there), path segments and query values."""
    parts = urllib.parse.urlsplit(url)
    host_port = parts.netloc.rpartition("@")[2]  # as written: .hostname would lower-case a token
    pieces = {url, parts.netloc, host_port, host_port.split(":")[0], parts.username or "", parts.password or ""}
    for segment in parts.path.split("/"):
        pieces.update((segment, urllib.parse.unquote(segment)))
    pieces.update(value for _, value in urllib.parse.parse_qsl(parts.query))
    return {piece for piece in pieces if len(piece) >= _SHORTEST_SECRET}


# apprise logs loaded URLs and payloads (debug), and names a bad token in warnings; urllib3 logs request paths
# (a Slack webhook's path is its token) at debug.
_GUARDED_LOGGERS = ("apprise", "urllib3.connectionpool")


class _Redactor(logging.Filter):
    """Blanks the URLs' secret parts in every record of the loggers it guards."""

    def __init__(self, urls: Sequence[str]) -> None:
        super().__init__()
        # Longest first, so a whole URL goes before the pieces it contains.
        self._secrets = sorted(set().union(*(_secret_parts(url) for url in urls)), key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "…")
        return text

    def install(self) -> None:
        for name in _GUARDED_LOGGERS:
            logging.getLogger(name).addFilter(self)

    def uninstall(self) -> None:
        for name in _GUARDED_LOGGERS:
            logging.getLogger(name).removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            record.msg, record.args = self.redact(record.getMessage()), ()
        return True


@dataclass(frozen=True)
class Delivery:
    delivered: bool  # every target asked for accepted it
    detail: str  # for the log and the Alerts page; masked
    failed_targets: tuple[str, ...] = ()  # target_id of each target that did not accept it


def _plugins(urls: Sequence[str]) -> list[apprise.plugins.NotifyBase]:
    """Apprise's plugin for each URL; SettingsError naming ALMA_OPS_ALERT_URLS (and the URL's position, masked)
    for the first it cannot use. Logs only through the redactor the caller installed."""
    plugins = []
    for position, url in enumerate(urls, start=1):
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin is None:
            raise SettingsError(
                f"{URLS_ENV}: URL {position} of {len(urls)} ({mask_url(url)}) is not an apprise URL apprise can"
                " use; see https://github.com/caronc/apprise/wiki for each service's form."
            )
        plugins.append(plugin)
    return plugins


@contextmanager
def _redacting(urls: Sequence[str]) -> Iterator[None]:
    redactor = _Redactor(urls)
    redactor.install()
    try:
        yield
    finally:
        redactor.uninstall()


def check_urls(urls: Sequence[str]) -> None:
    """At start (settings): every URL must be one apprise can use."""
    with _redacting(urls):
        _plugins(urls)


class Notifier:
    """Sends notifications to the configured apprise URLs. Built at start: an unreadable URL is a
    SettingsError naming ALMA_OPS_ALERT_URLS (masked, position given). While it lives, what apprise and
    urllib3 log passes through its redactor; `close` ends that."""

    def __init__(self, urls: Sequence[str], public_url: str) -> None:
        self._redactor = _Redactor(urls)
        self._redactor.install()
        try:
            plugins = _plugins(urls)
        except BaseException:
            self.close()
            raise
        self._public_url = public_url.rstrip("/")
        self._targets = [(target_id(url), mask_url(url), plugin) for url, plugin in zip(urls, plugins, strict=True)]

    def close(self) -> None:
        self._redactor.uninstall()

    @property
    def configured(self) -> bool:
        return bool(self._targets)

    @property
    def targets(self) -> tuple[tuple[str, str], ...]:
        """(target_id, masked URL) of each target, in configuration order."""
        return tuple((tid, masked) for tid, masked, _ in self._targets)

    def link(self, page: str) -> str:
        return f"{self._public_url}/{page}"

    def body(self, notification: Notification) -> str:
        return f"{notification.body}\n\nOpen: {self.link(notification.page)}"

    def send(self, notification: Notification, only: Collection[str] | None = None) -> Delivery:
        """Deliver to every target, or to those named in `only` (target ids: a retry after a partial
        failure goes only where it failed). Never raises."""
        chosen = [t for t in self._targets if only is None or t[0] in only]
        if not chosen:
            return Delivery(False, f"nowhere to send it: set {URLS_ENV}")
        body = self.body(notification)
        failed: list[tuple[str, str]] = []
        for tid, masked, plugin in chosen:
            try:
                accepted = plugin.notify(
                    body=body,
                    title=notification.title,
                    notify_type=_NOTIFY_TYPES[notification.kind],
                    body_format=apprise.NotifyFormat.TEXT,  # our text is text: nothing in it is markup
                )
            except Exception as error:  # a plugin bug must not reach the sync that called us
                log.warning("alert delivery to %s raised %s", masked, type(error).__name__)
                accepted = False
            if not accepted:
                failed.append((tid, masked))
        if failed:
            names = ", ".join(masked for _, masked in failed)
            detail = f"not accepted by {names} ({len(chosen) - len(failed)} of {len(chosen)} accepted)"
            log.warning("alert %r: %s", notification.title, detail)
            return Delivery(False, detail, tuple(tid for tid, _ in failed))
        return Delivery(True, f"delivered to {len(chosen)} target{'s' if len(chosen) > 1 else ''}")
