"""`printfleet alerts forward --webhook URL`: every alert lifecycle change POSTed to a
webhook, signed, at least once (sinks/webhook/; the contract: docs/alerts.md, "Webhook").

Its own module beside `cmd_alerts.py` (which registers it as an action of `alerts`): the
flags and the settings object of a long-running command, not a tool's.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from common.alert_view import SEVERITIES
from common.errors import PrintfleetError
from common.ops import WEBHOOK_OPS_PORT
from common.settings import Secret, build
from printfleet import kafka_flags, ops_flags, stop_signals
from printfleet.password_flags import refuse_password_flag
from schemas import SchemaRegistry
from sinks.webhook.forwarder import Forwarder
from sinks.webhook.settings import DEFAULT_GROUP, WebhookSettings

NAME = "printfleet alerts forward"


def add_parser(actions: Any) -> None:
    parser = actions.add_parser(
        "forward", help="POST every lifecycle change to a webhook, signed, at least once, until Ctrl-C",
        description="Each RAISED, UPDATED and CLEARED record of the alerts topic is POSTed as JSON, signed with "
                    "HMAC-SHA256 (X-Printfleet-Signature over X-Printfleet-Timestamp + '.' + body) and "
                    "identified by X-Printfleet-Id (the same on every repeat). Its position is kept in Kafka "
                    "(--group): a restart resumes after the last change the receiver answered 2xx. Settings "
                    "also as PRINTFLEET_WEBHOOK_<SETTING>. The contract: docs/alerts.md.",
    )
    parser.add_argument("--webhook", required=True, metavar="URL", help="the receiver's http(s) URL")
    parser.add_argument("--secret-file", type=Path, metavar="FILE",
                        help="file holding the shared HMAC secret (or PRINTFLEET_WEBHOOK_SECRET; never a flag)")
    refuse_password_flag(parser.add_argument_group(), "--secret", "PRINTFLEET_WEBHOOK_SECRET")
    parser.add_argument("--group", metavar="GROUP_ID",
                        help=f"consumer group keeping the position (default {DEFAULT_GROUP}); one per receiver")
    parser.add_argument("--from-beginning", action="store_true",
                        help="a group without a position starts at the oldest record the topic keeps "
                             "(default: at the end); a group with one always resumes there")
    filters = parser.add_argument_group("filters (all must match; what they leave out is committed past)")
    filters.add_argument("--rule", action="append", metavar="RULE_ID",
                         help="only this rule; repeat for several (e.g. --rule system-event --rule printhead-life)")
    filters.add_argument("--severity", action="append", choices=SEVERITIES,
                         help="only changes of exactly this severity; repeat for several "
                              "(unlike list/follow's minimum: route each severity where it belongs)")
    filters.add_argument("--site", help="only this site id")
    delivery = parser.add_argument_group("delivery")
    delivery.add_argument("--timeout-s", type=float, help="one POST, from connecting to the answer (default 10)")
    delivery.add_argument("--retry-max-s", type=float,
                          help="longest pause between attempts, and cap of a Retry-After (default 60)")
    delivery.add_argument("--refused-attempts", type=int,
                          help="attempts of a change the receiver refuses (4xx other than 408/425/429) before "
                               "it goes to the dead-letter topic (default 3)")
    kafka_flags.add_arguments(parser)
    ops_flags.add_arguments(parser, WEBHOOK_OPS_PORT)
    parser.set_defaults(handler=run)


def settings_from(args: argparse.Namespace) -> WebhookSettings:
    """Raises ValueError (SettingsError) naming what is wrong, OSError for an unreadable secret file."""
    secret = Secret(args.secret_file.read_text().strip()) if args.secret_file else None
    return build(
        WebhookSettings, "webhook", kafka=kafka_flags.settings(args), url=args.webhook, secret=secret,
        group_id=args.group, from_beginning=args.from_beginning or None,
        rules=frozenset(args.rule) if args.rule else None,
        severities=frozenset(args.severity) if args.severity else None, site=args.site,
        timeout_s=args.timeout_s, retry_max_s=args.retry_max_s, refused_attempts=args.refused_attempts,
        ops_host=args.ops_host, ops_port=ops_flags.port(args, "webhook", WEBHOOK_OPS_PORT),
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except (TypeError, ValueError) as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{NAME}: secret file {args.secret_file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    logging.getLogger("sinks.webhook").setLevel(logging.INFO)
    try:
        asyncio.run(forward(settings, SchemaRegistry.load_default()))
    except PrintfleetError as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return 1
    return 0


async def forward(settings: WebhookSettings, registry: SchemaRegistry) -> None:
    """Forward until SIGINT or SIGTERM, saying on stderr where from and to, and at the
    end how many changes went where."""
    stop = asyncio.Event()
    undo = stop_signals.install(stop)
    try:
        async with Forwarder(settings, registry) as forwarder:
            partitions = await forwarder.wait_assigned(stop)
            print(f"{NAME}: {forwarder.topic} ({len(partitions)} partitions, group "
                  f"{settings.kafka.group(settings.group_id)}) -> {settings.url}; Ctrl-C stops",
                  file=sys.stderr, flush=True)
            if forwarder.ops.url:
                print(f"{NAME}: metrics {forwarder.ops.url}/metrics, health {forwarder.ops.url}/readyz",
                      file=sys.stderr, flush=True)
            await forwarder.run(stop)
        c = forwarder.counters
        print(f"{NAME}: stopped; {c.delivered} delivered, {c.filtered} filtered out, {c.retries} retries, "
              f"{c.dead_lettered} dead-lettered", file=sys.stderr, flush=True)
    finally:
        undo()
