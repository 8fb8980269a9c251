"""What a value of a printfleet TOML settings file must be, and how an error message shows
it: the type names quoted in messages, the check, and the did-you-mean hint. Used by the
collector's settings (config.py) and its `[[printer]]` tables (printer_tables.py)."""

from __future__ import annotations

import difflib
import json

STRING, PATH, INTEGER, NUMBER, STRINGS = (
    "a string", "a path (string)", "an integer", "a number", "an array of strings",
)


def fits(value: object, expected: str) -> bool:
    """Whether `value` (as tomllib returned it) is what `expected` names."""
    if expected in (STRING, PATH):
        return isinstance(value, str)
    if expected == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def toml_type(value: object) -> str:
    """The TOML name of a value tomllib returned."""
    for python, toml in ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"),
                         (list, "an array"), (dict, "a table")):
        if isinstance(value, python):
            return toml
    return "a date/time"


def short(value: object) -> str:
    """`value` as TOML would write it (near enough), cut to 40 characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""
