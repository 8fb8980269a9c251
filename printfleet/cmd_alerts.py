"""`printfleet alerts list|follow|forward`: alerts for service tools.

`list` reads the open alerts from ClickHouse (the sink's `alert` table: the latest
lifecycle record of each alert, kept if it is not CLEARED); `follow` prints every new
lifecycle record from the alerts topic as it is committed (`common.kafka.tail`).
Both take the same filters and print the same columns (`common.alert_view`). `forward`
POSTs each change to a webhook, signed, at least once (`sinks.webhook`; its flags are
in `printfleet/cmd_alerts_forward.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
from collections.abc import Iterable
from typing import Any, Final, TextIO

from common.alert_view import COLUMNS, SEVERITIES, TABLE_COLUMNS, AlertFilter, cell, query_row, record_row
from common.kafka.errors import KafkaLayerError
from common.kafka.settings import KafkaSettings
from common.kafka.tail import Message, follow
from common.kafka.topics import topic_for
from printfleet import clickhouse_flags, kafka_flags, stop_signals
from printfleet.cmd_alerts_forward import add_parser as _add_forward
from printfleet.cmd_query import execute, render
from schemas import DecodeError, SchemaRegistry
from sinks.errors import SinkError

_LIFECYCLES: Final = "['RAISED', 'UPDATED', 'CLEARED']"
_SEVERITY_LIST: Final = "[" + ", ".join(f"'{s}'" for s in SEVERITIES) + "]"

# The latest lifecycle record of every alert, kept when it is not CLEARED. Latest: by
# event time, then lifecycle step (a CLEARED at the same millisecond as an UPDATED is
# later), then offset (an alert's records share a partition: the topic is keyed by
# printer). Site, printer and rule never change within an alert, so they filter before
# the LIMIT BY; severity can (an alert escalates), so it filters the latest record.
# The recommended parts are the child table's rows of that latest record (a record stored
# twice adds no part twice: groupUniqArray); an alert without any gets an empty array.
OPEN_ALERTS: Final = f"""SELECT alert_id, site_id, device_id, severity, rule_id, lifecycle, raised_at,
    event_time AS updated_at, cleared_at, occurrences, confidence, subsystem, source_event_code,
    predicted_failure_at, summary, recommended_action, recommended_part_numbers, notify_service, dedup_key
FROM (SELECT * FROM alert
      WHERE ({{site:String}} = '' OR site_id = {{site:String}})
        AND ({{printer:String}} = '' OR device_id = {{printer:String}})
        AND ({{rule:String}} = '' OR rule_id = {{rule:String}})
      ORDER BY event_time DESC, indexOf({_LIFECYCLES}, lifecycle) DESC, kafka_offset DESC
      LIMIT 1 BY alert_id) AS latest
LEFT JOIN (SELECT record_id, arrayMap(p -> p.2, arraySort(groupUniqArray((idx, part_number)))) AS recommended_part_numbers
           FROM alert_recommended_parts
           WHERE ({{site:String}} = '' OR site_id = {{site:String}})
             AND ({{printer:String}} = '' OR device_id = {{printer:String}})
           GROUP BY record_id) AS parts ON parts.record_id = latest.record_id
WHERE lifecycle != 'CLEARED'
  AND ({{min_rank:UInt8}} = 0 OR indexOf({_SEVERITY_LIST}, severity) > {{min_rank:UInt8}})
ORDER BY indexOf({_SEVERITY_LIST}, severity) DESC, raised_at, site_id, device_id, alert_id"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "alerts", help="list the open alerts (ClickHouse) or follow their lifecycle changes (Kafka)",
        description="list: the open alerts, from the sink's ClickHouse tables (a user with SELECT is enough). "
                    "follow: every RAISED, UPDATED and CLEARED record as the stream worker commits it to the "
                    "alerts topic. The contract: docs/alerts.md.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the open alerts (latest lifecycle step is not CLEARED)")
    _filters(listing)
    listing.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output (default table)")
    clickhouse_flags.add_arguments(listing)
    listing.set_defaults(handler=run_list)
    following = actions.add_parser("follow", help="print new lifecycle changes as they happen, until Ctrl-C")
    _filters(following)
    following.add_argument("--format", choices=("json", "csv", "table"), default="json",
                           help="output: json (default, one object a line), csv (header first), table")
    following.add_argument("--from-beginning", action="store_true",
                           help="start at the oldest record the topic keeps, not at its end")
    kafka_flags.add_arguments(following)
    following.set_defaults(handler=run_follow)
    _add_forward(actions)


def _filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters (all must match)")
    group.add_argument("--site", default="", help="only this site id")
    group.add_argument("--printer", default="", metavar="DEVICE_ID", help="only this printer")
    group.add_argument("--severity", choices=SEVERITIES, default="",
                       help="only alerts at least this serious (ERROR: ERROR and CRITICAL)")
    group.add_argument("--rule", default="", metavar="RULE_ID", help="only this rule (e.g. system-event)")


def _filter(args: argparse.Namespace) -> AlertFilter:
    return AlertFilter(site=args.site, printer=args.printer, rule=args.rule, min_severity=args.severity)


def run_list(args: argparse.Namespace) -> int:
    try:
        settings = clickhouse_flags.settings(args)
    except ValueError as exc:
        print(f"printfleet alerts list: {exc}", file=sys.stderr)
        return 2
    try:
        columns, rows = asyncio.run(execute(settings, OPEN_ALERTS, _filter(args).parameters()))
    except SinkError as exc:
        print(f"printfleet alerts list: {exc}", file=sys.stderr)
        return 1
    shown = COLUMNS if args.format != "table" else TABLE_COLUMNS
    picked = [tuple(r[c] if args.format == "json" else cell(r[c]) for c in shown)
              for r in (query_row(columns, row) for row in rows)]
    sys.stdout.write(render(list(shown), picked, args.format))
    return 0


def run_follow(args: argparse.Namespace) -> int:
    try:
        kafka = kafka_flags.settings(args)
    except (TypeError, ValueError) as exc:
        print(f"printfleet alerts follow: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_follow(kafka, _filter(args), args.format, args.from_beginning, sys.stdout))
    except KafkaLayerError as exc:
        print(f"printfleet alerts follow: {exc}", file=sys.stderr)
        return 1
    return 0


async def _follow(kafka: KafkaSettings, wanted: AlertFilter, fmt: str, from_beginning: bool, out: TextIO) -> None:
    """Print each matching lifecycle record, one line each, flushed at once (a tool reads
    the pipe line by line); a message that is no alert is reported on stderr."""
    stop = asyncio.Event()
    undo = stop_signals.install(stop)
    registry = SchemaRegistry.load_default()
    try:
        if fmt == "csv":
            _write_csv(out, [list(COLUMNS)])
        def positioned(topic: str, partitions: int) -> None:
            where = "the beginning" if from_beginning else "now"
            print(f"printfleet alerts follow: following {topic} ({partitions} partitions) from {where}; "
                  "Ctrl-C stops", file=sys.stderr, flush=True)

        async for message in follow(kafka, topic_for("alert"), stop, from_beginning=from_beginning,
                                    positioned=positioned):
            alert = decode(registry, message)
            if isinstance(alert, str):
                print(f"printfleet alerts follow: {message.topic}[{message.partition}]@{message.offset} "
                      f"is not an alert record, not shown: {alert}", file=sys.stderr)
                continue
            if wanted.matches(alert):
                out.write(line(record_row(alert), fmt))
                out.flush()
    finally:
        undo()


def decode(registry: SchemaRegistry, message: Message) -> dict[str, Any] | str:
    """The alert record in a message of the alerts topic (resolved to the newest alert
    schema), or why there is none: it is reported, never skipped in silence."""
    if message.value is None:
        return "no value (a tombstone)"
    try:
        decoded = registry.decode(message.value)
    except DecodeError as exc:
        return f"{type(exc).__name__}: {exc}"
    if decoded.kind != "alert":
        return f"a {decoded.kind} record, not an alert"
    return decoded.record


def line(row: dict[str, Any], fmt: str) -> str:
    """One lifecycle change as a line of the chosen format (CSV: without the header)."""
    if fmt == "json":
        return json.dumps(row, ensure_ascii=False) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        _write_csv(buffer, [[cell(row[c]) for c in COLUMNS]])
        return buffer.getvalue()
    return "  ".join(str(cell(row[c])) for c in TABLE_COLUMNS) + "\n"


def _write_csv(out: TextIO, rows: Iterable[list[Any]]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(rows)
    out.flush()
