"""Errors of the local stack (`printfleet stack ...`).

    StackError                 root; `retriable` says whether trying again may help
    ├── AlreadyRunning         a server of this stack is already up on its data folder
    ├── PortInUse              a port the stack needs is taken by another process
    ├── NotInstalled           the broker jars or chdb are missing: run the bootstrap
    └── StartFailed            a server did not become ready; carries its log tail
"""

from __future__ import annotations


class StackError(Exception):
    retriable: bool = False


class AlreadyRunning(StackError):
    pass


class PortInUse(StackError):
    retriable = True


class NotInstalled(StackError):
    pass


class StartFailed(StackError):
    retriable = True
