"""Stripe's form encoding: nested keys (`a[b]=c`), arrays (`a[0]=x`, `a[]=x`), plus the checks every
endpoint shares: unknown parameters, and typed reads with Stripe's error wording."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import parameter_invalid, parameter_missing, parameter_unknown

Params = dict[str, Any]

_SEGMENT = re.compile(r"\[([^\]]*)\]")


def nest(pairs: Iterable[tuple[str, str]]) -> Params:
    """Flat `key[sub][0]` pairs -> nested dicts and lists. Dicts keyed only by indexes become lists."""
    root: Params = {}
    for raw_key, value in pairs:
        head, _, rest = raw_key.partition("[")
        path = [head] + (_SEGMENT.findall("[" + rest) if rest else [])
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
        elif rule == LIST and not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
            raise parameter_invalid(name, "Invalid array")
        elif rule == SCALAR and not isinstance(value, str):
            raise parameter_invalid(name, f"Invalid {name}: expected a single value")
        elif rule == FREE_HASH and not (isinstance(value, (dict, list)) or value == ""):
            raise parameter_invalid(name, "Invalid hash")
        elif rule == RANGE:
            if isinstance(value, dict):
                check_known(value, dict.fromkeys(_RANGE_KEYS, SCALAR), name)
            elif not isinstance(value, str):
                raise parameter_invalid(name, f"Invalid {name}: expected an integer or a hash of gt, gte, lt, lte")


def required(params: Mapping[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise parameter_missing(name)
    return value


def as_int(value: Any, param: str) -> int:
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise parameter_invalid(param, f"Invalid integer: {value}", "parameter_invalid_integer")


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
        if item == "":
            merged.pop(key, None)
        else:
            merged[key] = item
    if len(merged) > 50:
        raise parameter_invalid("metadata", "You can have at most 50 metadata keys.")
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
