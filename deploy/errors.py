"""Errors of the local stack (`printfleet stack ...`).

    PrintfleetError                common/errors.py
    └── StackError                 root; `retriable` says whether trying again may help
        ├── AlreadyRunning         a server of this stack is already up on its data folder
        ├── PortInUse              retriable: a port the stack needs is taken by another
        │                          process, which may let it go
        ├── NotInstalled           the broker jars or chdb are missing: run the bootstrap
        ├── StartFailed            retriable: a server did not become ready; carries its
        │                          log tail
        └── DashboardError         a Grafana dashboard of deploy/grafana/ the ClickHouse
                                   plugin could not run (deploy/grafana.py)
"""

from __future__ import annotations

from common.errors import PrintfleetError


class StackError(PrintfleetError):
    """Root of every error raised by `deploy`."""

    retriable: bool = False


class AlreadyRunning(StackError):
    retriable = False


class PortInUse(StackError):
    retriable = True


class NotInstalled(StackError):
    retriable = False


class StartFailed(StackError):
    retriable = True


class DashboardError(StackError):
    retriable = False
