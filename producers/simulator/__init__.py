"""The printer fleet simulator: N simulated powder-bed printers (Jet Fusion 4200/5200
class) served over HTTPS for the site collector, with ground truth and faults for tests.

    from producers.simulator import SimulatorServer, SimulatorSettings
    async with SimulatorServer(SimulatorSettings(printers=20, port=0)) as sim:
        sim.base_urls, sim.ca_file, sim.fleet.truth()

    from producers.simulator import Fleet                    # no HTTP, for unit tests
    fleet = Fleet(SimulatorSettings(printers=20, seed=7, start_ms=...))
    fleet.advance_to(fleet.start_ms + 86_400_000)
    fleet.read("p001", "jobs", after=0)

The printer API is written down in docs/printer-api.md. Modules, one job each:
settings, ca (site CA and server certificate), catalogue (static facts), model (data),
jobs (making jobs), wear (totals and consumables), initial (a printer's past),
printer (state and engine), lifecycle and upkeep (transitions), history (ring buffers),
views, jobview and logtext (JSON and log text), fleet, clock, server, errors; and the
OPC UA side (docs/opcua.md): opcua_view (printer -> OPC 40540 values), opcua_machine
(one machine's nodes), opcua_server (server, security, tick, events), opcua_history
(event history), opcua_users (identities).
"""

from common.tls import CertificateError, ServerCertificate, SiteCa, ensure_site_ca, issue_server_certificate
from producers.simulator.clock import SimClock
from producers.simulator.errors import (
    BadRequestError,
    NotFoundError,
    ServerStartError,
    SimulatorError,
    UnknownLogError,
    UnknownPrinterError,
)
from producers.simulator.fleet import ENDPOINTS, FAULT_MODES, Fault, Fleet, FleetSummary
from producers.simulator.server import SimulatorServer
from producers.simulator.settings import SimulatorSettings

__all__ = [
    "ENDPOINTS",
    "FAULT_MODES",
    "BadRequestError",
    "CertificateError",
    "Fault",
    "Fleet",
    "FleetSummary",
    "NotFoundError",
    "ServerCertificate",
    "ServerStartError",
    "SimClock",
    "SimulatorError",
    "SimulatorServer",
    "SimulatorSettings",
    "SiteCa",
    "UnknownLogError",
    "UnknownPrinterError",
    "ensure_site_ca",
    "issue_server_certificate",
]
