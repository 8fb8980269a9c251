"""`printfleet demo`: the main job, a local fleet end to end on the embedded defaults.

Today it brings up the local stack and reports its health; the site side, the stream
processors and the sink join it as they land.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from deploy import stack
from deploy.errors import StackError
from deploy.settings import StackSettings


def register(sub: Any) -> None:
    parser = sub.add_parser("demo", help="run the local fleet end to end on the embedded defaults")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = StackSettings.from_env()
    try:
        if not all(h.pid for h in asyncio.run(stack.status(settings))):
            for s in asyncio.run(stack.up(settings)):
                print(f"{s.name:<10} ready in {s.ready_s:5.1f} s  {s.address}")
    except StackError as exc:
        print(f"printfleet demo: {exc}", file=sys.stderr)
        return 1
    healthy = True
    for h in asyncio.run(stack.status(settings)):
        healthy &= h.healthy
        print(f"{h.name:<10} {'healthy' if h.healthy else 'NOT ANSWERING'}  version {h.version}  {h.address}")
    print("stop the stack with: .venv/bin/printfleet stack down")
    return 0 if healthy else 1
