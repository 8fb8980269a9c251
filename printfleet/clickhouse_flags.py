"""The ClickHouse flags `printfleet sink` and `printfleet query` share, and the one
`ClickHouseSettings` they make (sinks/connection.py).

Precedence: flags, then `PRINTFLEET_CLICKHOUSE_*` variables, then the `[clickhouse]`
table of the configuration file, then defaults. Without a URL from any of them, the
command talks to the local stack (`printfleet stack up`) if one is set up here, and
refuses to start otherwise. The password
comes only from `PRINTFLEET_CLICKHOUSE_PASSWORD` or a file (`--clickhouse-password-file`,
`PRINTFLEET_CLICKHOUSE_PASSWORD_FILE`): a flag would show it in `ps`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

from common.settings import Secret, build
from printfleet.config_flags import Config
from printfleet.kafka_flags import local_stack
from printfleet.password_flags import refuse_password_flag
from sinks.connection import ClickHouseSettings, check_url


def add_arguments(parser: argparse.ArgumentParser, *, database_help: str = "default printfleet") -> None:
    group = parser.add_argument_group("ClickHouse (also PRINTFLEET_CLICKHOUSE_<FLAG>)")
    group.add_argument("--clickhouse-url", help="http(s)://host:port of a server (default: the local stack's)")
    group.add_argument("--clickhouse-user", help="user to log in as (default: default)")
    group.add_argument("--clickhouse-password-file", type=Path, metavar="FILE",
                       help="read the password from FILE (or set PRINTFLEET_CLICKHOUSE_PASSWORD)")
    refuse_password_flag(group, "--clickhouse-password", "PRINTFLEET_CLICKHOUSE_PASSWORD")
    group.add_argument("--clickhouse-database", "--database", dest="clickhouse_database",
                       help=f"database ({database_help})")
    group.add_argument("--clickhouse-ca-file", type=Path, metavar="PEM",
                       help="CA certificate(s) the server's certificate is checked against (https)")
    group.add_argument("--clickhouse-cert-file", type=Path, metavar="PEM", help="client certificate (mutual TLS)")
    group.add_argument("--clickhouse-key-file", type=Path, metavar="PEM", help="the client certificate's key")
    group.add_argument("--cluster", help="ClickHouse cluster name: ON CLUSTER DDL, Replicated and Distributed tables")


def settings(args: argparse.Namespace, env: Mapping[str, str] | None = None,
             config: Config = Config()) -> ClickHouseSettings:
    """Raises ValueError naming the flag, variable or file key that is wrong, or saying
    that no ClickHouse URL was given anywhere and no local stack is set up here."""
    env = os.environ if env is None else env
    table = config.table("clickhouse")
    url = args.clickhouse_url or env.get("PRINTFLEET_CLICKHOUSE_URL")
    if url:
        check_url(url, "--clickhouse-url" if args.clickhouse_url else "PRINTFLEET_CLICKHOUSE_URL")
    elif table.get("url"):
        check_url(str(table["url"]), f"{config.name('clickhouse')} url")
    else:
        url = local_stack(env, "ClickHouse URL: give --clickhouse-url, PRINTFLEET_CLICKHOUSE_URL "
                               "or [clickhouse] url").clickhouse_url
    return build(
        ClickHouseSettings, "clickhouse", env, config=table, config_name=config.name("clickhouse"),
        url=url, user=args.clickhouse_user, password=_password(args, env),
        database=args.clickhouse_database, ca_file=args.clickhouse_ca_file,
        cert_file=args.clickhouse_cert_file, key_file=args.clickhouse_key_file, cluster=args.cluster,
    )


def _password(args: argparse.Namespace, env: Mapping[str, str]) -> Secret | None:
    """The password from its file, or None (then build() reads PRINTFLEET_CLICKHOUSE_PASSWORD)."""
    if args.clickhouse_password_file is not None:
        path, source = args.clickhouse_password_file, "--clickhouse-password-file"
    elif env.get("PRINTFLEET_CLICKHOUSE_PASSWORD_FILE"):
        path, source = Path(env["PRINTFLEET_CLICKHOUSE_PASSWORD_FILE"]), "PRINTFLEET_CLICKHOUSE_PASSWORD_FILE"
    else:
        return None
    if env.get("PRINTFLEET_CLICKHOUSE_PASSWORD"):
        raise ValueError(f"{source} and PRINTFLEET_CLICKHOUSE_PASSWORD both give a password: keep one")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{source} {path}: cannot read it ({exc.strerror or exc})") from None
    # One line; a trailing newline (as editors and `echo` write) is not part of it.
    return Secret(text.rstrip("\r\n"))
