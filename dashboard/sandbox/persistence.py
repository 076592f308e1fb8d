"""`--state FILE`: the account and the clock offset in a JSON Lines file, replaced atomically, read back at start.

JSON, because loading a pickle runs whatever code the file names, and a state file may be one someone hands
you. The file holds the account's facts only: payment methods, the versions of each Charge, PaymentIntent and
Refund, the balance transactions, and the events in time order; indexes, hosted-page tokens and pending
deadlines are rebuilt from those facts.
Line one is a header (format, version, clock offset, the column names of every row type); every other line is
`[section, [row, ...]]`, a chunk of one section, sections in the order reading needs them. Rows are positional
arrays under the header's column names, so a file written by a sandbox whose objects have other fields is
refused rather than misread.

Versions: an event holds its object "as it stood then", and the live object is usually the newest of those.
Each distinct version is written once, and a later version of the same object only as what changed since
the one before it (`{"base": n, "status": "succeeded", ...}`), so the file stays small and a loaded account
shares every unchanged field between versions, as the running one does.

Saving is split so that a large account does not stall requests: `Snapshot.of` copies a few containers
between two requests (the objects are immutable, so the copies stay consistent), and `StateFile.save` encodes
the snapshot a chunk at a time, which a worker thread can do while requests keep being answered.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from functools import partial
from itertools import islice
from operator import attrgetter
from pathlib import Path
from typing import IO, Any

from .collector import collector_paused
from .index import Key
from .model import (
    AlmaRules,
    BalanceTransaction,
    Charge,
    Customer,
    Event,
    EventObject,
    PaymentError,
    PaymentIntent,
    PaymentMethod,
    Redirect,
    Refund,
    RequestRef,
    Sandbox,
)

FORMAT = "alma-sandbox-state"
FORMAT_VERSION = 3  # 3: refunds, balance transactions, customers
CHUNK_ROWS = 2_000  # rows per json.dumps call: milliseconds each, and no row outlives its chunk
BASE = "base"  # the key naming a delta row's previous version

ROW_TYPES = (
    PaymentMethod,
    Charge,
    PaymentIntent,
    Refund,
    BalanceTransaction,
    PaymentError,
    Redirect,
    RequestRef,
    Customer,
)
COLUMNS: dict[str, tuple[str, ...]] = {
    row_type.__name__: tuple(field.name for field in fields(row_type)) for row_type in ROW_TYPES
}
COLUMNS["Event"] = ("id", "created", "type", "object", "version", "request")  # object: which versions table
_ROW_OF: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    row_type: attrgetter(*COLUMNS[row_type.__name__]) for row_type in ROW_TYPES
}
_EVENT_FACTS = attrgetter("id", "created", "type")
_TABLES = {"payment_intent": PaymentIntent, "charge": Charge, "refund": Refund}  # what an event may hold
_TABLE_OF = {row_type: name for name, row_type in _TABLES.items()}


class StateFileError(ValueError):
    """A state file this sandbox cannot read back: the message names the file and what to do."""


@dataclass(frozen=True)
class Snapshot:
    """The account at one instant. Taking one copies containers only, never objects: the objects are
    immutable, and the events (never changed nor removed) are looked up by the ids listed here."""

    generation: int  # later snapshots have higher numbers; an older one never overwrites a newer file
    clock_offset: int
    payment_methods: list[PaymentMethod]
    charges: list[Charge]
    intents: dict[str, PaymentIntent]
    intent_keys: list[Key]  # creation order
    events: Mapping[str, Event]
    event_keys: list[Key]  # time order
    refunds: dict[str, Refund]
    refund_keys: list[Key]  # creation order
    balance_transactions: Mapping[str, BalanceTransaction]  # never changed nor removed, as events
    balance_keys: list[Key]  # creation order

    @classmethod
    def of(cls, sandbox: Sandbox, clock_offset: int, generation: int) -> Snapshot:
        return cls(
            generation=generation,
            clock_offset=clock_offset,
            payment_methods=list(sandbox.payment_methods.values()),
            charges=list(sandbox.charges.values()),
            intents=dict(sandbox.intents),
            intent_keys=sandbox.intent_index.entries(),
            events=sandbox.events,
            event_keys=sandbox.event_index.entries(),
            refunds=dict(sandbox.refunds),
            refund_keys=sandbox.refund_index.entries(),
            balance_transactions=sandbox.balance_transactions,
            balance_keys=sandbox.balance_index.entries(),
        )


@dataclass(frozen=True)
class SavedState:
    sandbox: Sandbox
    clock_offset: int


# ---- writing -----------------------------------------------------------------------------------------------
class _Versions:
    """Numbers each distinct version of one kind of object, in the order first met, and remembers which
    version of the same object came before it. Versions of one object are met oldest first, so comparing
    with the last one met is enough to recognise a version already numbered."""

    def __init__(self, row_type: type) -> None:
        self.row_of = _ROW_OF[row_type]
        self.columns = COLUMNS[row_type.__name__]
        self.versions: list[Any] = []
        self.bases: list[int | None] = []
        self._last: dict[str, tuple[Any, int]] = {}

    def number(self, version: EventObject) -> int:
        last = self._last.get(version.id)
        if last is not None and last[0] is version:
            return last[1]
        number = len(self.versions)
        self.versions.append(version)
        self.bases.append(None if last is None else last[1])
        self._last[version.id] = (version, number)
        return number

    def rows(self) -> Iterator[Any]:
        """A full row for an object's first version; for each later one, the columns that changed. A field a
        transition did not touch is the very same object in both versions (dataclasses.replace keeps it)."""
        versions, row_of, columns = self.versions, self.row_of, self.columns
        for version, base in zip(versions, self.bases, strict=True):
            row = row_of(version)
            if base is None:
                yield row
                continue
            delta: dict[str, Any] = {BASE: base}
            for column, value, before in zip(columns, row, row_of(versions[base]), strict=True):
                if value is not before:
                    delta[column] = value
            yield delta


def _table_of(version: EventObject) -> str:
    return _TABLE_OF[type(version)]


def _encode_nested(value: Any) -> Any:
    """json.dumps' fallback for the small frozen objects inside rows (last_payment_error, redirect, request)."""
    row_of = _ROW_OF.get(type(value))
    if row_of is None:
        raise TypeError(f"{type(value).__name__} has no place in a state file")
    return row_of(value)


def _write(snapshot: Snapshot, out: IO[str]) -> None:
    tables = {name: _Versions(row_type) for name, row_type in _TABLES.items()}
    events = [snapshot.events[event_id] for *_, event_id in snapshot.event_keys]
    event_versions = [tables[_table_of(event.object)].number(event.object) for event in events]
    current_charges = [tables["charge"].number(charge) for charge in snapshot.charges]
    intents = snapshot.intents
    current_intents = [tables["payment_intent"].number(intents[intent_id]) for *_, intent_id in snapshot.intent_keys]
    refunds = snapshot.refunds
    current_refunds = [tables["refund"].number(refunds[refund_id]) for *_, refund_id in snapshot.refund_keys]
    transactions = snapshot.balance_transactions
    header = {"format": FORMAT, "version": FORMAT_VERSION, "clock_offset": snapshot.clock_offset, "columns": COLUMNS}
    out.write(json.dumps(header, separators=(",", ":")) + "\n")
    sections: Iterable[tuple[str, Iterable[Any]]] = (  # in the order reading needs them
        ("payment_methods", map(_ROW_OF[PaymentMethod], snapshot.payment_methods)),
        ("charge_versions", tables["charge"].rows()),
        ("payment_intent_versions", tables["payment_intent"].rows()),
        ("refund_versions", tables["refund"].rows()),
        (
            "balance_transactions",
            (_ROW_OF[BalanceTransaction](transactions[txn_id]) for *_, txn_id in snapshot.balance_keys),
        ),
        ("charges", current_charges),
        ("intents", current_intents),
        ("refunds", current_refunds),
        (
            "events",
            (
                (*_EVENT_FACTS(event), _table_of(event.object), number, event.request)
                for event, number in zip(events, event_versions, strict=True)
            ),
        ),
    )
    for name, rows in sections:
        pending = iter(rows)
        while chunk := list(islice(pending, CHUNK_ROWS)):
            out.write(json.dumps([name, chunk], separators=(",", ":"), default=_encode_nested) + "\n")


# ---- reading -----------------------------------------------------------------------------------------------
Decoder = Callable[[Any], Any]


def _interned(strings: dict[str, str], text: str) -> str:
    """The one copy of `text` this load has seen: repeated strings share their memory."""
    return strings.setdefault(text, text)


def _optional(build: Callable[..., Any]) -> Decoder:
    return lambda value: None if value is None else build(*value)


class _VersionReader:
    """One versions table read back, chunk after chunk: a delta row starts from its base version's fields
    (the very same objects), then takes the columns it names."""

    def __init__(self, row_type: type, decoders: dict[str, Decoder]) -> None:
        self.row_type = row_type
        self.row_of = _ROW_OF[row_type]
        self.columns = COLUMNS[row_type.__name__]
        self.position = {column: index for index, column in enumerate(self.columns)}
        self.decoders = decoders
        self.versions: list[Any] = []

    def add(self, rows: list[Any]) -> None:
        position, decoders = self.position, self.decoders
        for row in rows:
            if isinstance(row, dict):
                values = list(self.row_of(self.versions[row.pop(BASE)]))
                for column, value in row.items():
                    decode = decoders.get(column)
                    values[position[column]] = value if decode is None or value is None else decode(value)
            elif isinstance(row, list) and len(row) == len(self.columns):
                values = row
                for column, decode in decoders.items():
                    value = values[position[column]]
                    values[position[column]] = None if value is None else decode(value)
            else:
                raise ValueError(f"a {self.row_type.__name__} row is neither {len(self.columns)} columns nor a delta")
            self.versions.append(self.row_type(*values))


class _Reader:
    """The account rebuilt from the file's lines, one chunk at a time (so reading never holds the whole
    document). Ids that other objects refer to, and short vocabularies, become one string object each, as
    they are in a running sandbox."""

    def __init__(self) -> None:
        strings: dict[str, str] = {}
        self.share: Decoder = partial(_interned, strings)
        self.payment_methods: list[PaymentMethod] = []
        self.charge_versions = _VersionReader(
            Charge,
            {
                "billing": _optional(Customer),
                **{name: self.share for name in ("id", "currency", "payment_intent", "payment_method")},
            },
        )
        self.refund_versions = _VersionReader(
            Refund, {name: self.share for name in ("id", "currency", "charge", "payment_intent", "status", "reason")}
        )
        self.intent_versions = _VersionReader(
            PaymentIntent,
            {
                "payment_method_types": tuple,
                "last_payment_error": _optional(PaymentError),
                "redirect": _optional(Redirect),
                **{
                    name: self.share
                    for name in ("id", "currency", "status", "capture_method", "payment_method", "latest_charge")
                },
            },
        )
        self.tables = {
            "charge": self.charge_versions.versions,
            "payment_intent": self.intent_versions.versions,
            "refund": self.refund_versions.versions,
        }
        self.charges: list[Charge] = []
        self.intents: list[PaymentIntent] = []
        self.refunds: list[Refund] = []
        self.balance_transactions: list[BalanceTransaction] = []
        self.events: list[Event] = []
        self.sections: dict[str, Callable[[list[Any]], None]] = {
            "payment_methods": self._payment_methods,
            "charge_versions": self.charge_versions.add,
            "payment_intent_versions": self.intent_versions.add,
            "refund_versions": self.refund_versions.add,
            "balance_transactions": lambda rows: self.balance_transactions.extend(
                BalanceTransaction(*row) for row in rows
            ),
            "charges": lambda numbers: self.charges.extend(self.tables["charge"][number] for number in numbers),
            "intents": lambda numbers: self.intents.extend(self.tables["payment_intent"][number] for number in numbers),
            "refunds": lambda numbers: self.refunds.extend(self.tables["refund"][number] for number in numbers),
            "events": self._events,
        }

    def _payment_methods(self, rows: list[Any]) -> None:
        share = self.share
        self.payment_methods.extend(
            PaymentMethod(share(object_id), created, kind, Customer(*billing))
            for object_id, created, kind, billing in rows
        )

    def _events(self, rows: list[Any]) -> None:
        share, tables = self.share, self.tables
        self.events.extend(
            Event(
                event_id,
                created,
                share(event_type),
                tables[table][number],
                None if request is None else RequestRef(*request),
            )
            for event_id, created, event_type, table, number, request in rows
        )


def _read(file_lines: Iterable[bytes], rules: AlmaRules) -> SavedState:
    lines = iter(file_lines)
    header = json.loads(next(lines, b"null"))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError("it is not an Alma sandbox state file")
    if header.get("version") != FORMAT_VERSION or header.get("columns") != {
        name: list(columns) for name, columns in COLUMNS.items()
    }:
        raise ValueError(f"it was written by another version of the sandbox (format {header.get('version')})")
    reader = _Reader()
    for line in lines:
        section, rows = json.loads(line)
        reader.sections[section](rows)
    sandbox = Sandbox.restored(
        rules,
        reader.payment_methods,
        reader.charges,
        reader.intents,
        reader.events,
        reader.refunds,
        reader.balance_transactions,
    )
    return SavedState(sandbox, int(header["clock_offset"]))


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # one writer at a time: the periodic thread and the save at shutdown
        self._saved_generation = -1

    def load(self, rules: AlmaRules) -> SavedState | None:
        if not self.path.exists():
            return None
        try:
            with self.path.open("rb") as lines:
                return _read(lines, rules)
        except (ValueError, TypeError, KeyError, IndexError) as error:  # JSON's own errors are ValueErrors
            raise StateFileError(
                f"cannot read the state file {self.path}: {error}. Move or delete it to start with an empty account."
            ) from None

    def save(self, snapshot: Snapshot) -> bool:
        """Write `snapshot` unless a newer one was written already. Atomic: a reader (or a crash) finds the
        previous file or this one, never half of one. Returns whether it wrote."""
        with self._lock:
            if snapshot.generation <= self._saved_generation:
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
            try:
                with collector_paused(), os.fdopen(descriptor, "w", encoding="utf-8") as out:
                    _write(snapshot, out)
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            self._saved_generation = snapshot.generation
            return True
