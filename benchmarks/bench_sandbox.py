"""Throughput of the local sandbox against localstripe, side by side in one run.

Scenarios (each bounded by a request count and a time limit, loopback only):
  checkout  create + confirm + retrieve a PaymentIntent, repeated (fresh store). The sandbox gets Alma intents
            (confirm -> requires_action); localstripe rejects Alma, so it gets card intents (confirm -> succeeded).
  list      pages of 100 PaymentIntents walked with `starting_after`, 100k intents stored. The sandbox seeds them
            with `--seed-demo` (timed: target < 60 s); localstripe has no seeding, so they are created in-process
            before it starts listening.
  wildcards `GET /v1/events?types[]=**…*x` over the account's event types, in-process: the sandbox's wildcard
            matcher against the backtracking regular expression it replaced (`.*` per star), one event type at
            growing star counts; the naive way is stopped at 12 stars (about 15 s each, growing ~4x a star).
  state     the `--state` file of a 100k-intent account, in-process: the sandbox's save (JSON Lines, encoded in
            a worker thread) and load, against pickling the account in the event loop (the naive way, and the
            sandbox's own format before): seconds, the longest the event loop went without running, file size.

Client: the same keep-alive `http.client` loop for both servers, sending form bodies as stripe-python encodes
them (with an Idempotency-Key on each POST, as stripe-python adds one), run in several worker processes so the
client is not the bottleneck. localstripe runs from its own venv (benchmarks/.venv-localstripe, built from
benchmarks/requirements.txt on first use), as shipped except that it binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import pickle
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dashboard.local_sandbox import stop_process
from dashboard.sandbox.collector import long_lived_allocation
from dashboard.sandbox.demo import seed_demo
from dashboard.sandbox.handlers import Call, event_type_matcher, list_events
from dashboard.sandbox.model import AlmaRules, RequestRef, Sandbox
from dashboard.sandbox.persistence import Snapshot, StateFile
from dashboard.sandbox.serializers import Serializer

LOCALSTRIPE_VENV = ROOT / "benchmarks" / ".venv-localstripe"
LOCALSTRIPE_REQUIREMENTS = ROOT / "benchmarks" / "requirements.txt"
LOCALSTRIPE_PICKLE = Path("/tmp/localstripe.pickle")  # where localstripe dumps its store on every write
HOST = "127.0.0.1"
SECRET_KEY = "sk_test_bench0000000000000000004242"
PAGE_SIZE = 100
STARTUP_TIMEOUT_SECONDS = 180.0

# localstripe's own start() binds every interface and reloads its last pickle; this keeps its app, middlewares
# and access logging as shipped, but listens on loopback only, starts empty and can be seeded in-process.
LOCALSTRIPE_LAUNCHER = """
import logging, sys
from aiohttp import web
from localstripe import resources, server
port, seed = int(sys.argv[1]), int(sys.argv[2])
dump_to_disk = resources.Store.dump_to_disk
resources.Store.dump_to_disk = lambda store: None  # seeding only: it pickles the whole store on every write
for n in range(seed):
    resources.PaymentIntent(amount=5000 + n % 1000, currency="eur", payment_method_types=["card"])
resources.Store.dump_to_disk = dump_to_disk
logger = logging.getLogger("aiohttp.access")
logger.setLevel(logging.DEBUG)
logger.addHandler(logging.StreamHandler())
web.run_app(server.app, host="127.0.0.1", port=port, access_log=logger, print=None)
"""


@dataclass(frozen=True)
class CheckoutBodies:
    """The form bodies one server needs for create and confirm; the loop around them is shared."""

    create: str
    confirm: str


@dataclass(frozen=True)
class WorkerResult:
    requests: int
    errors: int
    first_error: str
    finished_at: float


@dataclass(frozen=True)
class Measurement:
    requests: int
    errors: int
    first_error: str
    seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


@dataclass
class RunningServer:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    startup_seconds: float


def form(fields: dict[str, str]) -> str:
    return urllib.parse.urlencode(fields)


SANDBOX_CHECKOUT = CheckoutBodies(
    create=form({"amount": "15000", "currency": "eur", "payment_method_types[0]": "alma"}),
    confirm=form({"payment_method_data[type]": "alma", "return_url": "http://127.0.0.1:8501/return"}),
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class Client:
    """One keep-alive connection; counts answers that are not 2xx."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=30)
        self.connection.connect()
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.requests = 0
        self.errors = 0
        self.first_error = ""

    def call(self, method: str, path: str, body: str | None = None) -> bytes:
        headers = {"Authorization": f"Bearer {SECRET_KEY}", "Stripe-Version": "2026-10-28.endive"}
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Idempotency-Key"] = str(uuid.uuid4())
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        payload = response.read()
        self.requests += 1
        if response.status >= 300:
            self.errors += 1
            self.first_error = self.first_error or f"{method} {path} -> {response.status} {payload[:200]!r}"
        return payload

    def result(self) -> WorkerResult:
        self.connection.close()
        return WorkerResult(self.requests, self.errors, self.first_error, time.monotonic())


def wait_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def checkout_worker(port: int, bodies: CheckoutBodies, loops: int, start_at: float, stop_at: float) -> WorkerResult:
    client = Client(port)
    wait_until(start_at)
    for _ in range(loops):
        if time.monotonic() >= stop_at:
            break
        created = json.loads(client.call("POST", "/v1/payment_intents", bodies.create))
        intent_id = created.get("id")
        if not intent_id:
            break
        client.call("POST", f"/v1/payment_intents/{intent_id}/confirm", bodies.confirm)
        client.call("GET", f"/v1/payment_intents/{intent_id}")
    return client.result()


def last_intent_id(page: bytes) -> str | None:
    """The cursor for the next page, read without parsing 100 objects (the client must stay cheap)."""
    marker = max(page.rfind(b'"id": "pi_'), page.rfind(b'"id":"pi_'))
    if marker < 0:
        return None
    start = page.index(b'"pi_', marker) + 1
    return page[start : page.index(b'"', start)].decode()


def more_pages(page: bytes) -> bool:
    """The list's own has_more: the last "has_more" in the body, since it follows `data` in both servers' JSON."""
    flag = page.rfind(b'"has_more"')
    return flag >= 0 and b"true" in page[flag : flag + 20]


def list_worker(port: int, pages: int, start_at: float, stop_at: float) -> WorkerResult:
    client = Client(port)
    cursor: str | None = None
    wait_until(start_at)
    for _ in range(pages):
        if time.monotonic() >= stop_at:
            break
        query = f"limit={PAGE_SIZE}" + (f"&starting_after={cursor}" if cursor else "")
        page = client.call("GET", f"/v1/payment_intents?{query}")
        cursor = last_intent_id(page) if more_pages(page) else None  # after the last page: again from the newest
    return client.result()


def measure(clients: int, seconds: float, work: Callable[..., WorkerResult], *args: object) -> Measurement:
    """Run `work` in `clients` processes that start together; requests/s over the slowest one's span."""
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=clients, mp_context=context) as pool:
        start_at = time.monotonic() + 1.0  # lets every worker connect before the clock starts
        futures = [pool.submit(work, *args, start_at, start_at + seconds) for _ in range(clients)]
        results = [future.result() for future in futures]
    return Measurement(
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        first_error=next((r.first_error for r in results if r.first_error), ""),
        seconds=max(r.finished_at for r in results) - start_at,
    )


def answers_ok(port: int, path: str) -> bool:
    try:
        connection = http.client.HTTPConnection(HOST, port, timeout=5)
        connection.request("GET", path, headers={"Authorization": f"Bearer {SECRET_KEY}"})
        ok = connection.getresponse().status == 200
        connection.close()
        return ok
    except OSError:
        return False


def start_server(name: str, command: list[str], port: int, ready_path: str) -> RunningServer:
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while time.monotonic() - started < STARTUP_TIMEOUT_SECONDS:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} before answering")
        if answers_ok(port, ready_path):
            return RunningServer(name, port, process, time.monotonic() - started)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{name} did not answer {ready_path} within {STARTUP_TIMEOUT_SECONDS:.0f} s")


def stop_server(server: RunningServer) -> None:
    stop_process(server.process)


class Started:
    """Context manager: a server process on a free loopback port, always stopped by its own pid at the end."""

    def __init__(self, name: str, command_for_port: Callable[[int], list[str]], ready_path: str) -> None:
        self.name, self.ready_path = name, ready_path
        self.port = free_port()
        self.command = command_for_port(self.port)
        self.server: RunningServer | None = None

    def __enter__(self) -> RunningServer:
        self.server = start_server(self.name, self.command, self.port, self.ready_path)
        return self.server

    def __exit__(self, *exc: object) -> None:
        if self.server:
            stop_server(self.server)


def sandbox(seed: int = 0) -> Started:
    return Started(
        "sandbox",
        lambda port: [sys.executable, "-m", "dashboard.sandbox", "--port", str(port), "--seed-demo", str(seed)],
        "/_sandbox/health",
    )


def localstripe(python: Path, seed: int = 0) -> Started:
    return Started(
        "localstripe",
        lambda port: [str(python), "-c", LOCALSTRIPE_LAUNCHER, str(port), str(seed)],
        "/v1/payment_intents?limit=1",
    )


def localstripe_python() -> Path | None:
    """The localstripe venv's interpreter, building the venv on first use; None when it cannot be built."""
    python = LOCALSTRIPE_VENV / "bin" / "python"
    if (LOCALSTRIPE_VENV / ".installed").exists():
        return python
    print(f"building {LOCALSTRIPE_VENV.relative_to(ROOT)} from {LOCALSTRIPE_REQUIREMENTS.relative_to(ROOT)} ...")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(LOCALSTRIPE_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(LOCALSTRIPE_REQUIREMENTS),
            ],
            check=True,
        )
    except (subprocess.CalledProcessError, OSError) as failure:
        print(f"localstripe unavailable ({failure}); its column will be empty")
        return None
    (LOCALSTRIPE_VENV / ".gitignore").write_text("*\n")  # as newer venvs do: never committed by accident
    (LOCALSTRIPE_VENV / ".installed").touch()
    return python


def sandbox_stats(port: int) -> dict[str, int]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    connection.request("GET", "/_sandbox/stats")
    stats = json.loads(connection.getresponse().read())["requests"]
    connection.close()
    return stats


def localstripe_checkout_bodies(port: int) -> CheckoutBodies:
    """localstripe confirms only with a PaymentMethod attached at create, so make one card PM first."""
    client = Client(port)
    card = {
        "type": "card",
        "card[number]": "4242424242424242",
        "card[exp_month]": "12",
        "card[exp_year]": "2030",
        "card[cvc]": "123",
    }
    payment_method = json.loads(client.call("POST", "/v1/payment_methods", form(card)))["id"]
    client.result()
    return CheckoutBodies(
        create=form(
            {"amount": "15000", "currency": "eur", "payment_method_types[0]": "card", "payment_method": payment_method}
        ),
        confirm="",
    )


@dataclass(frozen=True)
class Row:
    scenario: str
    ours: Measurement
    theirs: Measurement | None


def describe_errors(name: str, measurement: Measurement) -> Iterator[str]:
    if measurement.errors:
        yield f"  {name}: {measurement.errors} error answers, first: {measurement.first_error}"


def print_table(rows: list[Row]) -> None:
    header = f"{'scenario':<44}{'ours req/s':>12}{'localstripe req/s':>19}{'ratio':>9}"
    print("\n" + header + "\n" + "-" * len(header))
    for row in rows:
        theirs = f"{row.theirs.per_second:>19.0f}" if row.theirs else f"{'n/a':>19}"
        ratio = (
            f"{row.ours.per_second / row.theirs.per_second:>8.1f}x"
            if row.theirs and row.theirs.per_second
            else f"{'n/a':>9}"
        )
        print(f"{row.scenario:<44}{row.ours.per_second:>12.0f}{theirs}{ratio}")
    for row in rows:
        for line in describe_errors(f"{row.scenario} (ours)", row.ours):
            print(line)
        for line in describe_errors(f"{row.scenario} (localstripe)", row.theirs) if row.theirs else ():
            print(line)


def check_stats(label: str, port: int, expected: dict[str, int]) -> bool:
    counted = sandbox_stats(port)
    seen = {route: counted.get(route, 0) for route in expected}
    ok = seen == expected and sum(counted.values()) == sum(expected.values())
    print(f"/_sandbox/stats {label}: {'ok' if ok else 'MISMATCH'} (sent {expected}, counted {counted})")
    return ok


async def loop_stall(work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(seconds `work` took, the longest the event loop went without running meanwhile): a request arriving
    then waits that long before the sandbox even reads it."""
    ticks: list[float] = []
    finished = asyncio.Event()

    async def tick() -> None:
        while not finished.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await work()
    took = time.perf_counter() - started
    await asyncio.sleep(0.05)  # what is freed after the work lands here
    finished.set()
    await ticker
    return took, max(later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False))


@dataclass(frozen=True)
class StateFileResult:
    save_seconds: float
    longest_stall: float
    load_seconds: float
    megabytes: float


NAIVE_STAR_LIMIT = 12


def print_wildcards(account: Sandbox) -> None:
    """Seconds to decide one event type against `*`*n + "x" (which never matches), ours and the naive regex;
    then the whole GET /v1/events handler with such a filter over the account."""
    event_type = next(iter(account.event_types))
    header = f"{'event type filter, one type':<44}{'ours s':>12}{'naive regex s':>15}{'ratio':>10}"
    print("\n" + header + "\n" + "-" * len(header))
    for stars in (8, 10, NAIVE_STAR_LIMIT, 5_000):
        pattern = "*" * stars + "x"
        ours = _seconds(lambda pattern=pattern: event_type_matcher([pattern])(event_type))
        if stars > NAIVE_STAR_LIMIT:
            print(f"{stars:>5} stars{'':<33}{ours:>12.6f}{'(hours)':>15}{'n/a':>10}")
            continue
        naive_match = re.compile(re.escape(pattern).replace(r"\*", ".*")).fullmatch
        naive = _seconds(lambda naive_match=naive_match: naive_match(event_type))
        print(f"{stars:>5} stars{'':<33}{ours:>12.6f}{naive:>15.3f}{naive / ours:>9.0f}x")
    serializer = Serializer(account, lambda token: token, lambda: 0)
    for label, pattern in (("no event matches", "*" * 4_999 + "x"), ("every event matches", "*" * 5_000)):
        call = Call(account, serializer, {"types": [pattern]}, {}, 0, RequestRef("req_bench"))
        whole = _seconds(lambda call=call: list_events(call))
        print(f"GET /v1/events, 5,000 stars, {label}, {len(account.events):,} events: {whole:.4f} s")


def _seconds(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def measure_state_file(intents: int) -> tuple[StateFileResult, StateFileResult]:
    """The sandbox's state file against pickling the account (naive: in the event loop, as it used to be)."""
    account = Sandbox(AlmaRules())
    with long_lived_allocation():
        seed_demo(account, intents, int(time.time()), seed=1)
    print_wildcards(account)
    with tempfile.TemporaryDirectory() as folder:
        ours, naive = Path(folder) / "state.jsonl", Path(folder) / "state.pickle"
        state_file = StateFile(ours)

        async def save_ours() -> None:
            await asyncio.to_thread(state_file.save, Snapshot.of(account, 0, generation=1))

        async def save_naive() -> None:
            naive.write_bytes(pickle.dumps((account, 0), protocol=pickle.HIGHEST_PROTOCOL))

        results = []
        for path, save, load in (
            (ours, save_ours, lambda: StateFile(ours).load(AlmaRules())),
            (naive, save_naive, lambda: pickle.loads(naive.read_bytes())),  # our own file, just written
        ):
            save_seconds, stall = asyncio.run(loop_stall(save))
            started = time.perf_counter()
            with long_lived_allocation():
                load()
            load_seconds = time.perf_counter() - started
            results.append(StateFileResult(save_seconds, stall, load_seconds, path.stat().st_size / 1e6))
    return results[0], results[1]


def print_state_file(intents: int, ours: StateFileResult, naive: StateFileResult) -> None:
    title = f"state file, {intents:,} intents"
    header = f"{title:<44}{'save s':>9}{'loop stall s':>14}{'load s':>9}{'MB':>7}"
    print("\n" + header + "\n" + "-" * len(header))
    rows = (("JSON Lines, saved from a thread (ours)", ours), ("pickle, saved in the loop (naive)", naive))
    for name, result in rows:
        print(
            f"{name:<44}{result.save_seconds:>9.2f}{result.longest_stall:>14.3f}{result.load_seconds:>9.2f}"
            f"{result.megabytes:>7.0f}"
        )
    print(f"longest stall while saving: {naive.longest_stall / ours.longest_stall:.0f}x shorter than the naive way")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=2, help="client worker processes (default 2)")
    parser.add_argument("--seconds", type=float, default=10.0, help="time limit per scenario and server")
    parser.add_argument("--loops", type=int, default=10000, help="max create+confirm+retrieve loops per client")
    parser.add_argument("--pages", type=int, default=10000, help="max list pages per client")
    parser.add_argument("--seed", type=int, default=100_000, help="stored intents for the list scenario")
    parser.add_argument("--skip-localstripe", action="store_true", help="measure the sandbox alone")
    parser.add_argument(
        "--state-intents", type=int, default=100_000, help="account size for the state file scenario (0 skips it)"
    )
    options = parser.parse_args()

    python = None if options.skip_localstripe else localstripe_python()
    pickle_existed = LOCALSTRIPE_PICKLE.exists()
    stats_ok = True
    try:
        with sandbox() as ours:
            checkout = measure(
                options.clients, options.seconds, checkout_worker, ours.port, SANDBOX_CHECKOUT, options.loops
            )
            loops = checkout.requests // 3
            stats_ok &= check_stats(
                "checkout",
                ours.port,
                {
                    "POST /v1/payment_intents": loops,
                    "POST /v1/payment_intents/{id}/confirm": loops,
                    "GET /v1/payment_intents/{id}": loops,
                },
            )
        theirs_checkout = None
        if python:
            with localstripe(python) as theirs:
                theirs_checkout = measure(
                    options.clients,
                    options.seconds,
                    checkout_worker,
                    theirs.port,
                    localstripe_checkout_bodies(theirs.port),
                    options.loops,
                )
        with sandbox(options.seed) as ours:
            seed_seconds = ours.startup_seconds
            listing = measure(options.clients, options.seconds, list_worker, ours.port, options.pages)
            stats_ok &= check_stats("list", ours.port, {"GET /v1/payment_intents": listing.requests})
        theirs_listing, theirs_seed_seconds = None, None
        if python:
            with localstripe(python, options.seed) as theirs:
                theirs_seed_seconds = theirs.startup_seconds
                theirs_listing = measure(options.clients, options.seconds, list_worker, theirs.port, options.pages)
    finally:
        if not pickle_existed:
            LOCALSTRIPE_PICKLE.unlink(missing_ok=True)

    print(
        f"\nclient: keep-alive http.client, {options.clients} processes, <= {options.seconds:.0f} s per scenario; "
        f"machine: {os.cpu_count()} cores"
    )
    rows = [
        Row("create+confirm+retrieve (3 requests/loop)", checkout, theirs_checkout),
        Row(f"list pages of {PAGE_SIZE}, {options.seed:,} intents stored", listing, theirs_listing),
    ]
    print_table(rows)
    seed_note = (
        f"; localstripe in-process seed + start {theirs_seed_seconds:.1f} s (no seeding option, not via HTTP)"
        if theirs_seed_seconds is not None
        else ""
    )
    print(f"\nseed {options.seed:,} intents: ours {seed_seconds:.1f} s to healthy (target < 60 s){seed_note}")
    verdicts = [seed_seconds < 60, stats_ok]
    for row in rows:
        verdicts.append(row.ours.per_second >= 1000 and row.ours.errors == 0)
        if row.theirs:
            verdicts.append(row.ours.per_second >= 2 * row.theirs.per_second)
    if options.state_intents:
        print_state_file(options.state_intents, *measure_state_file(options.state_intents))
    print(
        "targets (>= 1,000 req/s, >= 2x localstripe, seed < 60 s, stats match):", "met" if all(verdicts) else "NOT met"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
