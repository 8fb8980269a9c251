"""Errors of the printer fleet simulator (`printfleet simulate`).

`SimulatorError` is the simulator's branch of the producers tree (producers/errors.py),
so every error here is also a `ProducerError` and a `PrintfleetError` (common/errors.py).

    PrintfleetError                    common/errors.py
    └── ProducerError                  producers/errors.py
        └── SimulatorError             root of the simulator's errors
            ├── NotFoundError          no such thing on the simulator (HTTP 404)
            │   ├── UnknownPrinterError    no simulated printer has that id
            │   └── UnknownLogError        the printer has no (or no longer a) log with that id
            ├── BadRequestError        a query or body the simulator cannot use (HTTP 400)
            └── ServerStartError       retriable: the HTTPS or OPC UA server could not
                                       listen (port taken, bad host); the port may be freed

Only `ServerStartError` is retriable. Settings that make no sense raise ValueError, as
every printfleet settings object does.
"""

from __future__ import annotations

from producers.errors import ProducerError


class SimulatorError(ProducerError):
    """Root of the simulator's errors."""

    retriable: bool = False




class NotFoundError(SimulatorError):
    """Something the request names does not exist."""

    retriable = False


class UnknownPrinterError(NotFoundError):
    """A printer id that the fleet does not have."""

    retriable = False

    def __init__(self, printer_id: str) -> None:
        super().__init__(f"no simulated printer {printer_id!r}")
        self.printer_id = printer_id


class UnknownLogError(NotFoundError):
    """A log id the printer never wrote, or whose entry its ring buffer has dropped."""

    retriable = False

    def __init__(self, printer_id: str, log_id: str) -> None:
        super().__init__(f"printer {printer_id!r} has no log {log_id!r}")


class BadRequestError(SimulatorError):
    """A malformed query parameter or control request."""

    retriable = False


class ServerStartError(SimulatorError):
    """The server could not bind; retriable because the port may be freed."""

    retriable = True
