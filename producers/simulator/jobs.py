"""Making print jobs: who submits them (the site's people and computers), what they
contain (parts with geometry summaries and private names), and how printing goes
(layer durations, failure, warnings).

Called by the state machine (`lifecycle.py`) with the printer's own random generator, in
transition order, so a job depends only on (seed, printer index) and never on polling.
"""

from __future__ import annotations

import math
import random
import re
from array import array
from dataclasses import dataclass
from itertools import accumulate
from typing import Final

from producers.simulator.catalogue import (
    COMPUTER_PREFIXES,
    CUSTOMERS,
    EVENTS,
    FAILURES,
    FIRST_NAMES,
    JOB_WARNINGS,
    LAST_NAMES,
    LAYER_THICKNESS_UM,
    MATERIAL_DENSITY_G_CM3,
    PART_WORDS,
    PRINT_MODES,
    PRODUCTS,
    SOURCE_APPLICATIONS,
)
from producers.simulator.model import Job, JobWarning, Part

FAILURE_RATE: Final = 0.04  # jobs that fail while printing
POWDER_BULK_G_CM3: Final = 0.45  # unfused powder in the build volume
MODE_SPEED: Final = {"FAST": 0.86, "BALANCED": 1.0, "MECHANICAL": 1.06, "COSMETIC": 1.1, "CUSTOM": 1.0}
_SERIES: Final = "ABCDEFGHKLMNPRSTVW"


@dataclass(frozen=True, slots=True)
class SitePeople:
    """Users and computers of one site; every printer of the site draws from them."""

    users: tuple[str, ...]
    computers: tuple[str, ...]

    @classmethod
    def generate(cls, seed: int) -> SitePeople:
        rng = random.Random(f"printfleet-sim/{seed}/site")
        users: list[str] = []
        user_count, computer_count = rng.randint(8, 14), rng.randint(5, 9)
        while len(users) < user_count:
            name = f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}"
            if name not in users:
                users.append(name)
        computers: list[str] = []
        while len(computers) < computer_count:
            host = f"{rng.choice(COMPUTER_PREFIXES)}-{rng.randint(10, 9999):04d}"
            if host not in computers:
                computers.append(host)
        return cls(tuple(users), tuple(computers))


def slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-zäöüÄÖÜß]+", "-", text).strip("-").lower()


def new_job(
    rng: random.Random,
    *,
    number: int,
    now_ms: int,
    people: SitePeople,
    material: str,
    envelope_mm: tuple[float, float, float],
) -> Job:
    """A job as it arrives in the printer's queue: names, geometry summary, parts."""
    job_id = f"J{number:06d}"
    customer, product = rng.choice(CUSTOMERS), rng.choice(PRODUCTS)
    series = f"{rng.choice(_SERIES)}{rng.randint(1, 999):03d}"
    user, computer = rng.choice(people.users), rng.choice(people.computers)
    file_name = f"{slug(product)}-{series.lower()}_rev{rng.randint(1, 9)}.3mf"
    project_dir = f"C:\\Users\\{user}\\Documents\\Builds\\{slug(customer)}"
    r = rng.random()
    # Most builds are a few hundred to a few thousand layers; full-height ones are rarer.
    layers = rng.randint(150, 600) if r < 0.15 else rng.randint(600, 2500) if r < 0.75 else rng.randint(2500, 4600)
    z = layers * LAYER_THICKNESS_UM / 1000.0
    x = rng.uniform(180.0, envelope_mm[0] - 10.0)
    y = rng.uniform(140.0, envelope_mm[1] - 8.0)
    density_pct = rng.uniform(6.0, 18.0)
    volume = x * y * z / 1000.0 * density_pct / 100.0
    parts = _parts(rng, job_id, now_ms, product, series, project_dir, volume, (x, y, z), layers, material)
    volume = sum(p.volume_cm3 for p in parts)  # exact sum after rounding per part
    parts_kg = sum(p.material_g for p in parts) / 1000.0
    powder_kg = x * y * (z + 8.0) / 1000.0 * POWDER_BULK_G_CM3 / 1000.0
    mode = rng.choice(PRINT_MODES)
    return Job(
        job_id=job_id,
        seed=rng.getrandbits(48),
        created_ms=now_ms,
        name=f"{customer} – {product} {series}",
        user=user,
        computer=computer,
        file_name=file_name,
        file_path=f"{project_dir}\\{file_name}",
        application=rng.choice(SOURCE_APPLICATIONS),
        print_mode=mode,
        material=material,
        layer_count=layers,
        bbox_mm=(round(x, 1), round(y, 1), round(z, 2)),
        volume_cm3=round(volume, 2),
        area_cm2=round(sum(p.area_cm2 for p in parts), 1),
        density_pct=round(100.0 * volume / (x * y * z / 1000.0), 2),
        material_in_parts_kg=round(parts_kg, 3),
        recyclable_kg=round(max(0.0, powder_kg - parts_kg) * 0.82, 3),
        parts=parts,
        agent_cm3={
            "FUSING": round(0.25 * volume + 0.01 * layers, 1),
            "DETAILING": round(0.01 * layers * x * y / 1e4 + 0.004 * volume, 1),
        },
        # fused material plus the share of unfused powder too aged to recycle
        material_kg=round(parts_kg + 0.18 * max(0.0, powder_kg - parts_kg), 3),
    )


def _parts(
    rng: random.Random,
    job_id: str,
    now_ms: int,
    product: str,
    series: str,
    project_dir: str,
    volume: float,
    box: tuple[float, float, float],
    layers: int,
    material: str,
) -> list[Part]:
    count = int(round(math.exp(rng.uniform(math.log(10), math.log(250)))))
    designs = [rng.choice(PART_WORDS) for _ in range(rng.randint(2, 8))]
    weights = [rng.uniform(0.2, 3.0) for _ in designs]
    copies = [1 + int(count * w / sum(weights)) for w in weights]
    unit = volume / sum(c * w for c, w in zip(copies, weights))
    density = MATERIAL_DENSITY_G_CM3.get(material, 1.0)
    parts: list[Part] = []
    for d, (word, weight, n) in enumerate(zip(designs, weights, copies)):
        part_volume = unit * weight
        fill = rng.uniform(0.2, 0.6)  # part volume over its bounding box
        edge = (part_volume / fill * 1000.0) ** (1.0 / 3.0)  # mm
        aspect = (rng.uniform(0.6, 1.8), rng.uniform(0.6, 1.8))
        bx = min(box[0] - 2.0, edge * aspect[0])
        by = min(box[1] - 2.0, edge * aspect[1])
        bz = min(box[2], edge / math.sqrt(aspect[0] * aspect[1]))
        height = max(1, min(layers, int(bz * 1000.0 / LAYER_THICKNESS_UM)))
        area = rng.uniform(6.0, 12.0) * part_volume ** (2.0 / 3.0)
        file_name = f"{slug(product)}_{slug(word)}_{series.lower()}-{d + 1}.stl"
        for copy in range(n):
            first = int(rng.random() * (layers - height + 1))
            parts.append(
                Part(
                    part_id=f"{job_id}-P{len(parts) + 1:03d}",
                    name=f"{product} {word} {series}/{d + 1} #{copy + 1:03d}",
                    file_name=file_name,
                    file_path=f"{project_dir}\\parts\\{file_name}",
                    created_ms=now_ms,
                    first_layer=first,
                    last_layer=first + height - 1,
                    bbox_mm=(round(bx, 1), round(by, 1), round(bz, 2)),
                    volume_cm3=round(part_volume, 3),
                    area_cm2=round(area, 2),
                    material_g=round(part_volume * density, 2),
                )
            )
    return parts


def plan_print(rng: random.Random, job: Job, start_ms: int, base_layer_s: float) -> None:
    """Fix the job's print timeline at its start: layer ends, failure, warnings.

    Layer durations are the printer's base (with its drift, from the caller) times the
    print mode's factor, with noise and occasional slow layers.
    """
    n = job.layer_count
    base = base_layer_s * MODE_SPEED.get(job.print_mode, 1.0) * rng.uniform(0.97, 1.03)
    # +-12 % uniform noise in ms; one draw per layer keeps a simulated day cheap
    low, spread = (base * 0.88) * 1000.0, (base * 0.24) * 1000.0
    rnd = rng.random
    millis = [int(low + spread * rnd()) for _ in range(n)]
    for _ in range(n // 250):  # a slow layer now and then: late print data, a recoat retry
        millis[rng.randrange(n)] += rng.randint(1500, 4000)
    job.print_start_ms = start_ms
    job.layer_ends = array("i", accumulate(millis))
    if rng.random() < FAILURE_RATE:
        fail = rng.randint(max(1, n // 20), n - 1)
        job.layers_printed = fail
        job.fail_kind = rng.choice(FAILURES)
        into = int(rng.random() * (job.layer_ends[fail] - job.layer_ends[fail - 1]))
        job.print_end_ms = start_ms + job.layer_ends[fail - 1] + into
    else:
        job.layers_printed = n
        job.print_end_ms = start_ms + job.layer_ends[-1]
    job.warnings = []
    for _ in range(rng.choice((0, 0, 0, 1, 1, 2, 3))):
        kind = rng.choice(JOB_WARNINGS)
        layer = rng.randrange(job.layers_printed)
        raised = job.layer_end_ms(layer)
        if raised >= job.print_end_ms:
            continue
        event = EVENTS[kind]
        job.warnings.append(
            JobWarning(
                warning_id=f"{job.job_id}-W{len(job.warnings) + 1:02d}",
                kind=kind,
                layer=layer,
                message=event.description.format(layer=layer),
                severity=event.severity,
                raised_ms=raised,
            )
        )
    job.warnings.sort(key=lambda w: w.raised_ms)


def private_strings(job: Job) -> set[str]:
    """Every private string a job holds (for the ground truth)."""
    out = {job.name, job.user, job.computer, job.file_name, job.file_path}
    for part in job.parts:
        out.update((part.name, part.file_name, part.file_path))
    return out
