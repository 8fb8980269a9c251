"""What must never be collected (catalogue: data protection rules), as checkable terms.

The catalogue forbids job contents, job names, part geometry, part names, computer names
and job user names. This module turns that list into terms and checks text against them:
- the schema tests scan every field name, doc, type name and enum symbol of every kept
  schema with `scan_schema`, so no field for forbidden data can be added;
- the collector calls `is_forbidden_key` on the keys of what a printer's API returns
  and drops those fields before anything else sees them (`jobName`, `user_name`...).

Matching is by words, not substrings: `printer_name` and `model_number` are allowed,
`jobName`, `JOB_NAME` and "the user name" are not. A computer or host name is allowed
only in a field whose name says it is a pseudonym (`source_host_pseudonym`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Iterator, Mapping

# concept -> word sequences that name it (singular forms; see _words).
FORBIDDEN_TERMS: Final[Mapping[str, tuple[tuple[str, ...], ...]]] = {
    "job name": (("job", "name"), ("jobname",), ("job", "title"), ("name", "of", "the", "job")),
    "part name": (("part", "name"), ("partname",), ("name", "of", "the", "part")),
    "user name": (("user",), ("username",), ("login",), ("owner",), ("author",)),
    "computer name": (
        ("computer",), ("computername",), ("host", "name"), ("hostname",), ("host",),
        ("workstation",), ("pc", "name"),
    ),
    "geometry": (("geometry",), ("mesh",), ("stl",), ("3mf",), ("cad",), ("vertex",), ("triangle",), ("shape",)),
    "file name": (("file", "name"), ("filename",), ("file", "path"), ("filepath",)),
    "job content": (("job", "content"), ("job", "file"), ("print", "file"), ("build", "file")),
}
# Concepts a pseudonymised field may mention (it says what it pseudonymises).
PSEUDONYMISABLE: Final = frozenset({"computer name", "user name"})
PSEUDONYM_MARK: Final = "pseudonym"

_SPLIT: Final = re.compile(r"[^0-9a-z]+")
_CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


@dataclass(frozen=True, slots=True)
class PrivacyFinding:
    """A place in a schema that names forbidden data."""

    path: str  # e.g. "Job.parts[].part_name" or "Job.parts[].part_id (doc)"
    concept: str  # a key of FORBIDDEN_TERMS
    text: str

    def __str__(self) -> str:
        return f"{self.path}: mentions {self.concept}: {self.text!r}"


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("ices") and len(word) > 5:  # vertices
        return word[:-4] + "ex"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _words(text: str) -> list[str]:
    """`sourceHostName`, `source_host_names` and "source host names" all give
    ["source", "host", "name"]."""
    spaced = _CAMEL.sub(" ", text).lower()
    return [_singular(w) for w in _SPLIT.split(spaced) if w]


def forbidden_concepts(text: str, *, pseudonymised: bool = False) -> list[str]:
    """The forbidden concepts `text` (a name or prose) mentions, in FORBIDDEN_TERMS order.

    With `pseudonymised`, the concepts in PSEUDONYMISABLE are allowed.
    """
    words = _words(text)
    found = []
    for concept, sequences in FORBIDDEN_TERMS.items():
        if pseudonymised and concept in PSEUDONYMISABLE:
            continue
        if any(_contains(words, seq) for seq in sequences):
            found.append(concept)
    return found


def is_forbidden_key(key: str) -> bool:
    """True if a field called `key` would carry forbidden data and must be dropped.

    For the collector, on printer API payload keys: `is_forbidden_key("jobName")` is
    True, `is_forbidden_key("jobId")` is False, `is_forbidden_key("hostPseudonym")` is False.
    """
    return bool(forbidden_concepts(key, pseudonymised=PSEUDONYM_MARK in _words(key)))


def scan_schema(schema: Any, *, path: str = "") -> list[PrivacyFinding]:
    """Every field name, doc, type name and enum symbol in a JSON schema (as in the .avsc
    file, docs included) that names forbidden data. Empty means the schema is clean.
    """
    return list(_scan(schema, path, pseudonymised=False))


def _scan(schema: Any, path: str, *, pseudonymised: bool) -> Iterator[PrivacyFinding]:
    if isinstance(schema, list):
        for branch in schema:
            yield from _scan(branch, path, pseudonymised=pseudonymised)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        name = str(schema.get("name", ""))
        path = f"{path}:{name}" if path else name
        yield from _text(path, name, pseudonymised=False)
        yield from _text(f"{path} (doc)", schema.get("doc"), pseudonymised=pseudonymised)
        for symbol in schema.get("symbols", ()):
            yield from _text(f"{path}.{symbol}", symbol, pseudonymised=False)
    for field in schema.get("fields", ()):
        name = str(field.get("name", ""))
        where = f"{path}.{name}"
        marked = PSEUDONYM_MARK in _words(name)
        yield from _text(where, name, pseudonymised=marked)
        yield from _text(f"{where} (doc)", field.get("doc"), pseudonymised=marked)
        yield from _scan(field.get("type"), where, pseudonymised=marked)
    if kind == "array":
        yield from _scan(schema.get("items"), f"{path}[]", pseudonymised=pseudonymised)
    elif kind == "map":
        yield from _scan(schema.get("values"), f"{path}{{}}", pseudonymised=pseudonymised)
    elif isinstance(kind, (dict, list)):
        yield from _scan(kind, path, pseudonymised=pseudonymised)


def _text(path: str, text: Any, *, pseudonymised: bool) -> Iterator[PrivacyFinding]:
    if isinstance(text, str):
        for concept in forbidden_concepts(text, pseudonymised=pseudonymised):
            yield PrivacyFinding(path, concept, text)


def _contains(words: list[str], sequence: tuple[str, ...]) -> bool:
    n = len(sequence)
    return any(tuple(words[i : i + n]) == sequence for i in range(len(words) - n + 1))
