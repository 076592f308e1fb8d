"""Stripe's form encoding: nested keys (`a[b]=c`), arrays (`a[0]=x`, `a[]=x`), plus the checks every
endpoint shares: unknown parameters, and typed reads with Stripe's error wording."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import malformed_request, parameter_invalid, parameter_missing, parameter_unknown, shown

Params = dict[str, Any]

_SEGMENT = re.compile(r"\[([^\]]*)\]")
_INTEGER = re.compile(r"-?[0-9]{1,18}")  # ASCII digits only (str.isdigit takes "٥" and "²"); within int64
MAX_NESTING = 10  # brackets in one key; the deepest parameter the sandbox knows has 3
MAX_STRING_LENGTH = 5_000  # Stripe's OpenAPI spec caps its free strings at maxLength 5000
METADATA_MAX_KEYS = 50  # docs.stripe.com/metadata: 50 keys, keys up to 40 characters, values up to 500
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


def nest(pairs: Iterable[tuple[str, str]]) -> Params:
    """Flat `key[sub][0]` pairs -> nested dicts and lists. Dicts keyed only by indexes become lists."""
    root: Params = {}
    for raw_key, value in pairs:
        head, _, rest = raw_key.partition("[")
        path = [head] + (_SEGMENT.findall("[" + rest) if rest else [])
        if len(path) > MAX_NESTING + 1:
            raise malformed_request(
                f"Invalid parameter {shown(raw_key)}: parameters nest at most {MAX_NESTING} levels deep.", param=head
            )
        node: Params = root
        for index, segment in enumerate(path[:-1]):
            if segment == "":  # `a[][b]`: a new element each time the pair opens one
                segment = str(len(node))
                path[index] = segment
            child = node.get(segment)
            if not isinstance(child, dict):
                child = node[segment] = {}
            node = child
        leaf = path[-1]
        if leaf == "":
            leaf = str(len(node))
        node[leaf] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    indexes = [str(position) for position in range(len(converted))]
    if converted and sorted(converted, key=lambda key: (len(key), key)) == indexes:
        return [converted[index] for index in indexes]
    return converted


# Schema leaves. A nested dict in a schema lists the keys allowed under that hash.
SCALAR = "scalar"
LIST = "list"
FREE_HASH = "free_hash"  # metadata: any keys; "" clears it
RANGE = "range"  # created: an integer or a hash of gt/gte/lt/lte

Schema = Mapping[str, Any]
_RANGE_KEYS = ("gt", "gte", "lt", "lte")


def check_known(params: Mapping[str, Any], schema: Schema, prefix: str = "") -> None:
    """Refuse what Stripe refuses: unknown keys (named with their full bracket path) and wrong shapes."""
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else key
        if key not in schema:
            raise parameter_unknown(name)
        rule = schema[key]
        if isinstance(rule, Mapping):
            if value == "":
                continue  # an emptied hash, as stripe-python sends for {}
            if not isinstance(value, dict):
                raise parameter_invalid(name, "Invalid hash")
            check_known(value, rule, name)
        elif rule == LIST:
            if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
                raise parameter_invalid(name, "Invalid array")
            for item in value:
                check_length(item, name)
        elif rule == SCALAR:
            if not isinstance(value, str):
                raise parameter_invalid(name, f"Invalid {name}: expected a single value")
            check_length(value, name)
        elif rule == FREE_HASH and not (isinstance(value, (dict, list)) or value == ""):
            raise parameter_invalid(name, "Invalid hash")
        elif rule == RANGE:
            if isinstance(value, dict):
                check_known(value, dict.fromkeys(_RANGE_KEYS, SCALAR), name)
            elif not isinstance(value, str):
                raise parameter_invalid(name, f"Invalid {name}: expected an integer or a hash of gt, gte, lt, lte")


def check_length(value: str, param: str, limit: int = MAX_STRING_LENGTH) -> str:
    if len(value) > limit:
        raise parameter_invalid(param, f"Invalid string: {shown(value)}; must be at most {limit} characters")
    return value


def required(params: Mapping[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise parameter_missing(name)
    return value


def as_int(value: Any, param: str) -> int:
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    text = shown(value) if isinstance(value, str) else repr(value)
    raise parameter_invalid(param, f"Invalid integer: {text}", "parameter_invalid_integer")


def optional_int(params: Mapping[str, Any], name: str) -> int | None:
    value = params.get(name)
    return None if value is None else as_int(value, name)


def as_bool(value: Any, param: str) -> bool:
    if value in ("true", "false"):
        return value == "true"
    raise parameter_invalid(param, f"Invalid boolean: {value}")


def optional_bool(params: Mapping[str, Any], name: str, default: bool = False) -> bool:
    value = params.get(name)
    return default if value is None else as_bool(value, name)


def one_of(params: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
    value = params.get(name, default)
    if value is not None and value not in allowed:
        raise parameter_invalid(name, f"Invalid {name}: must be one of {', '.join(allowed)}")
    return value


def metadata_update(current: Mapping[str, str], value: Any) -> dict[str, str]:
    """Stripe's metadata semantics: keys merge, an empty value deletes its key, "" empties everything."""
    if value is None:
        return dict(current)
    if value == "":
        return {}
    if isinstance(value, list):  # keys "0", "1", ... decode as an array; metadata keeps them as keys
        value = {str(position): item for position, item in enumerate(value)}
    merged = dict(current)
    for key, item in value.items():
        if not isinstance(item, str):
            raise parameter_invalid(f"metadata[{key}]", "Metadata values must be strings.")
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise parameter_invalid(
                "metadata",
                f"Invalid key: {shown(key)} must be a string of at most {METADATA_MAX_KEY_LENGTH} characters",
            )
        if len(item) > METADATA_MAX_VALUE_LENGTH:
            raise parameter_invalid(
                "metadata",
                f"Invalid value for key {key}: {shown(item)} must be a string of at most "
                f"{METADATA_MAX_VALUE_LENGTH} characters",
            )
        if item == "":
            merged.pop(key, None)
        else:
            merged[key] = item
    if len(merged) > METADATA_MAX_KEYS:
        raise parameter_invalid("metadata", f"You can have at most {METADATA_MAX_KEYS} metadata keys.")
    return merged


def created_range(value: Any, param: str = "created") -> tuple[int | None, int | None]:
    """`created` as Stripe takes it -> inclusive (lowest, highest) bounds, None for open ends."""
    if value is None:
        return None, None
    if isinstance(value, str):
        exact = as_int(value, param)
        return exact, exact
    lowest: int | None = None
    highest: int | None = None
    for op, raw in value.items():
        bound = as_int(raw, f"{param}[{op}]")
        if op in ("gt", "gte"):
            candidate = bound + 1 if op == "gt" else bound
            lowest = candidate if lowest is None else max(lowest, candidate)
        else:
            candidate = bound - 1 if op == "lt" else bound
            highest = candidate if highest is None else min(highest, candidate)
    return lowest, highest


def expand_paths(params: Mapping[str, Any]) -> frozenset[str]:
    value = params.get("expand")
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = [value]
    return frozenset(value)
