"""Static facts the simulated printers draw from: models, part numbers, event codes, and
the word lists that private names (jobs, users, computers, files, parts) are built from.

Read by `printer.py`, `jobs.py` and `sitepool.py`; nothing here is random or mutable.
Event descriptions never hold private data: private strings ride only in debug details
and private keys, where the collector's tests expect them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Model:
    model_number: str
    model_name: str
    size_mm: tuple[float, float, float]
    layer_s: tuple[float, float]  # range of a printer's base layer duration
    printhead_part: str
    printhead_type: str
    firmware: tuple[str, ...]


MODELS: Final = (
    Model("M0P44A", "Jet Fusion 4200", (380.0, 284.0, 380.0), (10.0, 12.5), "F9K08A", "3D600 fusing/detailing", ("5.2.1.14", "5.3.0.22", "5.3.2.7")),
    Model("4WY25A", "Jet Fusion 5200", (380.0, 284.0, 380.0), (8.6, 10.8), "3ED58A", "3D700 fusing/detailing", ("6.1.0.31", "6.2.1.4")),
)
MATERIALS: Final = ("PA12", "PA12", "PA12", "PA11", "PA12GB", "TPA")  # weighted draw
MATERIAL_DENSITY_G_CM3: Final = {"PA12": 1.01, "PA11": 1.05, "PA12GB": 1.30, "TPA": 1.10}
PRINT_MODES: Final = ("BALANCED", "BALANCED", "BALANCED", "FAST", "MECHANICAL", "COSMETIC", "CUSTOM")
SOURCE_APPLICATIONS: Final = (
    "3D Build Manager 4.4.1",
    "3D Build Manager 4.5.0",
    "Materialise Magics 27.0",
    "Autodesk Netfabb 2025.1",
)
LAYER_THICKNESS_UM: Final = 80.0
PRINTHEAD_SLOTS: Final = 6
BUILD_UNIT_PART: Final = "M0P47A"
CLEANING_ROLL_PART: Final = "F9K09A"
AGENT_TYPES: Final = ("FUSING", "DETAILING")
AGENT_CARTRIDGE_CM3: Final = 3000.0
CLEANING_ROLL_LAYERS: Final = 60_000  # layers one cleaning roll serves
PRINTHEAD_LIFE_S: Final = 1_400 * 3600  # printing time before REPLACE_SOON/replacement
FILTER_LIFE_S: Final = 1_500 * 3600  # cooling-system time one air filter lasts


@dataclass(frozen=True, slots=True)
class EventKind:
    code: str
    severity: str  # a Severity symbol of system_event
    subsystem: str
    description: str  # str.format template; placeholders are never private data


EVENTS: Final[dict[str, EventKind]] = {
    # job lifecycle
    "job_received": EventKind("0100-0001-0001", "INFO", "job-manager", "Job received and queued"),
    "job_started": EventKind("0100-0001-0002", "INFO", "job-manager", "Job started printing ({layers} layers)"),
    "job_printed": EventKind("0100-0001-0003", "INFO", "job-manager", "Job printed; build unit cooling"),
    "job_completed": EventKind("0100-0001-0004", "INFO", "job-manager", "Job completed; build unit ready to unpack"),
    "job_cancelled": EventKind("0100-0001-0005", "WARNING", "job-manager", "Job cancelled by the operator"),
    "warmup_started": EventKind("0101-0002-0001", "INFO", "thermal", "Warm-up started"),
    "build_unit_inserted": EventKind("0203-0001-0001", "INFO", "build-unit", "Build unit {serial} inserted"),
    "build_unit_removed": EventKind("0203-0001-0002", "INFO", "build-unit", "Build unit {serial} removed"),
    "printer_started": EventKind("0001-0001-0001", "INFO", "power", "Printer started, firmware {firmware}"),
    "printer_sleep": EventKind("0001-0001-0010", "INFO", "power", "Printer entered sleep mode"),
    "printer_wake": EventKind("0001-0001-0011", "INFO", "power", "Printer woke from sleep mode"),
    # maintenance and consumables
    "cleaning_roll_low": EventKind("0061-0002-0010", "WARNING", "printhead-cleaning", "Printhead cleaning roll low ({pct} % used)"),
    "cleaning_roll_replaced": EventKind("0061-0002-0011", "INFO", "printhead-cleaning", "Printhead cleaning roll replaced"),
    "printhead_recovery": EventKind("0057-0002-0031", "WARNING", "printhead", "Printhead in slot {slot} needed recovery (level {level})"),
    "printhead_error": EventKind("0057-0002-0040", "WARNING", "printhead", "Printhead in slot {slot}: nozzle health below threshold"),
    "printhead_replace_soon": EventKind("0057-0002-0050", "WARNING", "printhead", "Printhead in slot {slot} near end of life"),
    "printhead_replaced": EventKind("0057-0002-0051", "INFO", "printhead", "Printhead in slot {slot} replaced"),
    "non_genuine_agent": EventKind("0057-0003-0001", "WARNING", "agent-supply", "Non-genuine agent detected at printhead slot {slot}"),
    "expired_agent": EventKind("0057-0003-0002", "WARNING", "agent-supply", "Expired agent detected at printhead slot {slot}"),
    "agent_low": EventKind("0070-0001-0010", "WARNING", "agent-supply", "{agent} agent cartridge low ({pct} % left)"),
    "agent_replaced": EventKind("0070-0001-0011", "INFO", "agent-supply", "{agent} agent cartridge replaced"),
    "filter_replace_soon": EventKind("0082-0001-0010", "WARNING", "cooling", "Air filter: replace soon"),
    "filter_replace_now": EventKind("0082-0001-0011", "ERROR", "cooling", "Air filter: replace now"),
    "filter_replaced": EventKind("0082-0001-0012", "INFO", "cooling", "Air filter replaced"),
    "calibration_done": EventKind("0057-0004-0001", "INFO", "carriage", "Printhead alignment calibrated"),
    # print-time warnings (also listed as job warnings)
    "lamp_deviation": EventKind("0030-0001-0020", "WARNING", "lamp", "Fusing lamp temperature outside target band on layer {layer}"),
    "recoat_irregular": EventKind("0040-0002-0015", "WARNING", "build-unit", "Powder recoating irregular on layer {layer}"),
    "powder_low": EventKind("0040-0002-0030", "WARNING", "build-unit", "Build material in the build unit running low"),
    "layer_data_late": EventKind("0110-0001-0007", "INFO", "print-data", "Print data for layer {layer} arrived late"),
    # failures: the job fails, the printer goes to ERROR
    "fail_printhead": EventKind("0057-0001-0053", "ERROR", "printhead", "Printhead failure in slot {slot}; job aborted"),
    "fail_recoater": EventKind("0040-0001-0002", "ERROR", "build-unit", "Recoater crash on layer {layer}; job aborted"),
    "fail_lamp": EventKind("0030-0001-0001", "ERROR", "lamp", "Fusing lamp failure; job aborted"),
    "fail_thermal": EventKind("0020-0001-0009", "CRITICAL", "thermal", "Build temperature out of safe range; job aborted"),
    "fail_build_unit_link": EventKind("0203-0002-0004", "ERROR", "build-unit", "Lost communication with build unit {serial}; job aborted"),
    "error_cleared": EventKind("0001-0002-0001", "INFO", "printer", "Error cleared by the operator"),
    # background
    "humidity_sensor": EventKind("0090-0001-0003", "WARNING", "sensor", "Ambient humidity reading out of range"),
    "cover_opened": EventKind("0011-0001-0001", "INFO", "front-panel", "Top cover opened"),
    "ntp_sync": EventKind("0120-0001-0001", "INFO", "network", "Clock synchronised with the time server"),
    "disk_usage": EventKind("0130-0001-0002", "WARNING", "storage", "Disk usage above 80 %"),
    "memory_pressure": EventKind("0130-0002-0001", "WARNING", "memory", "Memory usage high"),
}
FAILURES: Final = ("fail_printhead", "fail_recoater", "fail_lamp", "fail_thermal", "fail_build_unit_link")
JOB_WARNINGS: Final = ("lamp_deviation", "recoat_irregular", "powder_low", "layer_data_late")
BACKGROUND: Final = ("humidity_sensor", "cover_opened", "ntp_sync", "ntp_sync", "disk_usage", "memory_pressure")

# Logs the printer rolls over on a timer, with the period in hours.
PERIODIC_LOGS: Final = {"SENSOR": 2.0, "MEMORY_USAGE": 4.0, "SERVO_STATE_MACHINE": 6.0, "FRONT_PANEL": 12.0, "PRINTHEAD": 24.0}

# Word lists for private names. Combined with numbers they give names long and odd
# enough that a byte search for one never hits an unrelated field by chance.
FIRST_NAMES: Final = ("anna", "jürgen", "mehmet", "sofia", "lukas", "chiara", "tobias", "ingrid", "yusuf", "marta", "henrik", "olga", "rafael", "nele", "björn", "amelie")
LAST_NAMES: Final = ("keller", "weiß", "okafor", "brandt", "lindqvist", "moretti", "schulz", "novak", "haddad", "petersen", "kowalski", "dubois", "yilmaz", "berger")
COMPUTER_PREFIXES: Final = ("ENG-WS", "CAD-LAB", "AMPREP-PC", "DESIGN-NB", "FERTIGUNG-PC", "WS")
CUSTOMERS: Final = ("Meier Automotive", "Nordwerk Fluidtechnik", "Alpen Medical", "Brandt Robotics", "Hanse Drones", "Studio Vetro", "Kessler Orthopädie", "Rheinwerk Pumps")
PRODUCTS: Final = ("Gripper", "Manifold", "Bracket", "Orthosis", "Drone arm", "Housing", "Duct", "Clip set", "Impeller", "Lamp shade", "Jig", "Cable guide")
PART_WORDS: Final = ("finger", "base plate", "cover", "hinge", "clip", "spacer", "adapter", "lid", "connector", "strut", "knob", "bushing", "mount", "shell")
