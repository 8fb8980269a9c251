"""A password never on the command line: argv is visible to every user of the machine.

Each password has a `--...-password-file` flag and an environment variable. A flag named
like the password itself is registered only to refuse it, with a message that does not
repeat the value: without it, `--kafka-sasl-password s3cret` would be an unrecognized
argument that argparse echoes back, into a terminal or a pod's log.
"""

from __future__ import annotations

import argparse


def refuse_password_flag(group: argparse._ArgumentGroup, flag: str, variable: str) -> None:
    """Register `flag` (e.g. --kafka-sasl-password) so that using it ends the command,
    naming `variable` and `flag`-file instead."""

    class Refuse(argparse.Action):
        def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
            parser.error(f"{flag} is refused: a password on the command line shows in `ps`; "
                         f"set {variable} or give {flag}-file")

    group.add_argument(flag, nargs="?", action=Refuse, help=argparse.SUPPRESS)
