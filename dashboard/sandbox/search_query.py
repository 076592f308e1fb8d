"""Stripe's search query language, for PaymentIntents, as a predicate over a serialized PaymentIntent.

Grammar (as Stripe documents it): clauses `field<op>value`, optionally negated with a leading `-`, joined by
whitespace or by `AND` / `OR` (case-insensitive). AND and OR cannot be mixed in one query and there are no
parentheses. Operators depend on the field's type: every field takes `:` (exact match, case-insensitive for
text), string fields take `~` (substring, at least 3 characters), numeric fields take `>`, `<`, `=`, `>=`,
`<=`. Values are quoted with `'` or `"` (backslash escapes a quote); `null` unquoted matches an absent or
empty field, so `-metadata['k']:null` means "has the key". Pure Python: the sandbox applies the predicate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Predicate = Callable[[Mapping[str, Any]], bool]
FieldType = Literal["numeric", "string", "token"]

MAX_CLAUSES = 10
MIN_SUBSTRING_LENGTH = 3
FIELD_TYPES: dict[str, FieldType] = {
    "amount": "numeric",
    "created": "numeric",
    "currency": "string",
    "status": "token",
    "metadata": "token",
}
QUERY_FIELDS_DOC = "https://stripe.com/docs/search#query-fields-for-payment-intents"
COMPARATORS = (">=", "<=", ">", "<", "=")

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_OPERATOR = re.compile(r">=|<=|[:~><=]")
_BARE_VALUE = re.compile(r"[^\s'\"]+")
_CONNECTOR = re.compile(r"(AND|OR)(?=\s|$)", re.IGNORECASE)
_INTEGER = re.compile(r"-?[0-9]{1,18}")  # ASCII digits (\d takes any script's); within int64


class SearchQueryError(ValueError):
    """A query Stripe would refuse: answered as 400 invalid_request_error on the `query` parameter."""

    param = "query"


@dataclass(frozen=True)
class Clause:
    field: str
    metadata_key: str | None  # set only for metadata['key']
    operator: str
    value: str | int | None  # None stands for the `null` token
    negated: bool

    def matches(self, intent: Mapping[str, Any]) -> bool:
        return self._test(self._field_value(intent)) != self.negated

    def _field_value(self, intent: Mapping[str, Any]) -> Any:
        if self.metadata_key is None:
            return intent.get(self.field)
        return (intent.get("metadata") or {}).get(self.metadata_key)

    def _test(self, actual: Any) -> bool:
        if self.value is None:
            return actual is None or actual == ""
        if actual is None:
            return False
        if isinstance(self.value, int):
            return _compare_numbers(actual, self.operator, self.value)
        text, wanted = str(actual).casefold(), self.value.casefold()
        return wanted in text if self.operator == "~" else text == wanted


def _compare_numbers(actual: int, operator: str, wanted: int) -> bool:
    if operator in (":", "="):
        return actual == wanted
    if operator == ">":
        return actual > wanted
    if operator == "<":
        return actual < wanted
    if operator == ">=":
        return actual >= wanted
    return actual <= wanted


class _Scanner:
    """Walks the query left to right; every error names what was expected and where."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.query)

    def skip_spaces(self) -> bool:
        start = self.pos
        while not self.at_end() and self.query[self.pos].isspace():
            self.pos += 1
        return self.pos > start

    def take(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.query, self.pos)
        if found is None:
            return None
        self.pos = found.end()
        return found.group(0)

    def take_char(self, char: str) -> bool:
        if self.query.startswith(char, self.pos):
            self.pos += 1
            return True
        return False

    def take_quoted(self) -> str | None:
        """A '...' or "..." string with backslash escapes, or None when no quote starts here."""
        if self.at_end() or self.query[self.pos] not in "'\"":
            return None
        quote, start = self.query[self.pos], self.pos
        self.pos += 1
        chars: list[str] = []
        while not self.at_end():
            char = self.query[self.pos]
            self.pos += 1
            if char == "\\" and not self.at_end():
                chars.append(self.query[self.pos])
                self.pos += 1
            elif char == quote:
                return "".join(chars)
            else:
                chars.append(char)
        raise self.error(f"the quoted value starting at position {start} is never closed")

    def error(self, reason: str) -> SearchQueryError:
        return SearchQueryError(f"Invalid search query `{self.query}`: {reason}.")


def parse_search_query(query: str) -> Predicate:
    """Compile `query` into a predicate over PaymentIntent dicts, or raise SearchQueryError."""
    scanner = _Scanner(query)
    scanner.skip_spaces()
    if scanner.at_end():
        raise SearchQueryError("Search query is empty: give at least one clause, such as `status:'succeeded'`.")
    clauses = [_parse_clause(scanner)]
    connectors: set[str] = set()
    while scanner.skip_spaces() and not scanner.at_end():
        connector = scanner.take(_CONNECTOR)
        connectors.add(connector.upper() if connector else "AND")
        if connector:
            scanner.skip_spaces()
            if scanner.at_end():
                raise scanner.error(f"`{connector}` must be followed by a clause")
        clauses.append(_parse_clause(scanner))
    if not scanner.at_end():
        raise scanner.error(f"unexpected `{query[scanner.pos :]}` at position {scanner.pos}")
    if len(connectors) > 1:
        raise scanner.error("AND and OR cannot be combined in the same query")
    if len(clauses) > MAX_CLAUSES:
        raise scanner.error(f"a query can have at most {MAX_CLAUSES} clauses, this one has {len(clauses)}")
    if connectors == {"OR"}:
        return lambda intent: any(clause.matches(intent) for clause in clauses)
    return lambda intent: all(clause.matches(intent) for clause in clauses)


def _parse_clause(scanner: _Scanner) -> Clause:
    negated = scanner.take_char("-")
    start = scanner.pos
    field = scanner.take(_FIELD_NAME)
    if field is None:
        raise scanner.error(f"expected a field name at position {start}")
    field_type = FIELD_TYPES.get(field)
    if field_type is None:
        raise SearchQueryError(
            f"Field `{field}` is an unsupported search field for resource `payment_intents`. "
            f"See {QUERY_FIELDS_DOC} for a list of supported fields."
        )
    metadata_key = _parse_metadata_key(scanner) if field == "metadata" else None
    operator = scanner.take(_OPERATOR)
    if operator is None:
        raise scanner.error(f"expected an operator (`:`, `~`, `>`, `<`, `=`, `>=`, `<=`) after `{field}`")
    value = _parse_value(scanner, field, field_type, operator)
    return Clause(field, metadata_key, operator, value, negated)


def _parse_metadata_key(scanner: _Scanner) -> str:
    if not scanner.take_char("["):
        raise scanner.error("metadata must name its key, as in `metadata['order_id']:'6735'`")
    key = scanner.take_quoted()
    if not key:
        raise scanner.error("the metadata key must be a non-empty quoted string, as in `metadata['order_id']`")
    if not scanner.take_char("]"):
        raise scanner.error(f"expected `]` after metadata key '{key}'")
    return key


def _parse_value(scanner: _Scanner, field: str, field_type: FieldType, operator: str) -> str | int | None:
    quoted = scanner.take_quoted()
    raw = quoted if quoted is not None else scanner.take(_BARE_VALUE)
    if raw is None:
        raise scanner.error(f"expected a value after `{field}{operator}` at position {scanner.pos}")
    if quoted is None and raw.lower() == "null":
        if operator != ":":
            raise scanner.error(f"`null` can only be used with `:`, as in `{field}:null`")
        return None
    if operator == "~":
        if field_type != "string":
            raise scanner.error(f"substring matching (`~`) is not supported for field `{field}`")
        if len(raw) < MIN_SUBSTRING_LENGTH:
            raise scanner.error(f"substring matching needs at least {MIN_SUBSTRING_LENGTH} characters, got '{raw}'")
        return raw
    if operator in COMPARATORS and field_type != "numeric":
        raise scanner.error(f"numeric comparator `{operator}` is not supported for field `{field}`")
    if field_type == "numeric":
        if not _INTEGER.fullmatch(raw):
            raise scanner.error(f"`{field}` is a numeric field and '{raw}' is not an integer")
        return int(raw)
    return raw
