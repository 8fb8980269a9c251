"""`printfleet query NAME` / `printfleet query --sql "..."`: analytics over ClickHouse."""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import decimal
import io
import json
import sys
from typing import Any

from printfleet import clickhouse_flags
from sinks import queries
from sinks.client import ClickHouseClient
from sinks.connection import ClickHouseSettings
from sinks.errors import SinkError


def register(sub: Any) -> None:
    names = "\n".join(f"  {q.name:20} {q.description}" for q in queries.QUERIES.values())
    parser = sub.add_parser(
        "query",
        help="run a named analytics query (or --sql) against ClickHouse and print the result",
        description=f"Named queries:\n{names}\n\nClickHouse flags can also be set as PRINTFLEET_CLICKHOUSE_<FLAG>; "
        "a user with SELECT on the database is enough.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", nargs="?", help="a named query (see above)")
    parser.add_argument("--sql", help="ad-hoc SQL instead of a named query")
    parser.add_argument("--site", default="", help="only this site (default: every site)")
    parser.add_argument("--days", type=int, default=30, help="how far back, by event time (default 30)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output (default table)")
    parser.add_argument("--show-sql", action="store_true", help="print the named query's SQL instead of running it")
    clickhouse_flags.add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if bool(args.name) == bool(args.sql):
        print("printfleet query: give a query name or --sql (printfleet query --help lists the names)", file=sys.stderr)
        return 2
    try:
        named = queries.get(args.name) if args.name else None
        settings = clickhouse_flags.settings(args)
    except (SinkError, ValueError) as exc:
        print(f"printfleet query: {exc}", file=sys.stderr)
        return 2
    if args.show_sql and named is not None:
        print(f"-- {named.name}: {named.description}\n{named.sql}")
        return 0
    sql = named.sql if named is not None else args.sql
    parameters = {"site": args.site, "days": args.days} if named is not None else None
    try:
        columns, rows = asyncio.run(execute(settings, sql, parameters))
    except SinkError as exc:
        print(f"printfleet query: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(render(columns, rows, args.format))
    return 0


async def execute(
    settings: ClickHouseSettings, sql: str, parameters: dict[str, Any] | None,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one SELECT. Connects without creating anything, so SELECT rights suffice;
    raises `SinkError` (`ClickHouseAccessDenied` naming the user and the right)."""
    client = ClickHouseClient(settings)
    await client.start()
    try:
        return await client.query(sql, parameters)
    finally:
        await client.close()


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def render(columns: list[str], rows: list[tuple[Any, ...]], fmt: str) -> str:
    """The result as an aligned text table, CSV (with a header) or JSON (a list of objects)."""
    if fmt == "json":
        return json.dumps([dict(zip(columns, map(_plain, row))) for row in rows], indent=1) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if v is None else _plain(v) for v in row] for row in rows])
        return out.getvalue()
    if not rows:
        return "(no rows)\n"
    cells = [[("" if v is None else str(_plain(v))) for v in row] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    body = ["  ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body, f"({len(rows)} rows)"]) + "\n"


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
