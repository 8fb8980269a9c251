"""What the demo simulates: printers dealt to sites so every site is in the cohorts, the
clock started before a UTC midnight and never behind the last run, releases newer than
every simulated printer's firmware."""

from __future__ import annotations

from collections import Counter

import pytest

from printfleet.demo_fleet import (DAY_MS, DemoPrinter, DemoSite, deal, gather_opcua, printers_of, releases,
                                   shared_models, start_ms)
from producers.simulator import Fleet, SimulatorSettings
from producers.simulator.catalogue import MODELS
from streams.advisories import compare_versions

HOUR_MS = 3_600_000
T = 1_765_123_456_789  # 2025-12-07 16:04:16.789 UTC


def _fleet(printers: int) -> list[DemoPrinter]:
    return printers_of(Fleet(SimulatorSettings(printers=printers, start_ms=T)).truth())


def test_the_default_fleet_gives_five_sites_of_four_each_with_every_model() -> None:
    printers = _fleet(20)
    sites = deal(printers, 5)
    assert [s.site_id for s in sites] == [f"demo-site-{n}" for n in range(1, 6)]
    assert [len(s.printers) for s in sites] == [4] * 5
    assert Counter(p for s in sites for p in s.printers) == Counter(printers)  # each printer once
    assert shared_models(sites) == sorted(m.model_number for m in MODELS)


@pytest.mark.parametrize("printers,sites", [(5, 5), (13, 5), (21, 5), (60, 7)])
def test_sites_differ_by_one_printer_at_most_and_a_model_with_enough_printers_is_everywhere(printers: int, sites: int) -> None:
    fleet = _fleet(printers)
    dealt = deal(fleet, sites, prefix="x")
    sizes = [len(s.printers) for s in dealt]
    assert sum(sizes) == printers and max(sizes) - min(sizes) <= 1
    counts = Counter(p.model_number for p in fleet)
    assert set(shared_models(dealt)) == {m for m, n in counts.items() if n >= sites}


def test_fewer_printers_than_sites_is_refused() -> None:
    with pytest.raises(ValueError, match="4 printers cannot make 5 sites"):
        deal(_fleet(4), 5)


def _models(site: DemoSite) -> Counter[str]:
    return Counter(p.model_number for p in site.printers)


def test_the_opcua_printers_move_to_the_first_site_and_every_site_keeps_its_models() -> None:
    printers = _fleet(20)
    dealt = deal(printers, 5)
    last_two = {p.printer_id for p in printers[-2:]}  # what the simulator serves over OPC UA
    assert not last_two <= {p.printer_id for p in dealt[0].printers}  # dealt elsewhere: they must move
    sites = gather_opcua(dealt, last_two)
    assert sites[0].opcua_ids == last_two and {p.printer_id for p in sites[0].opcua_printers} == last_two
    assert len(sites[0].api_printers) == 2 and not sites[0].opcua_ids & {p.printer_id for p in sites[0].api_printers}
    assert all(not s.opcua_ids for s in sites[1:])
    assert [_models(s) for s in sites] == [_models(s) for s in dealt]
    assert Counter(p for s in sites for p in s.printers) == Counter(printers)  # each printer once
    assert [s.site_id for s in sites] == [s.site_id for s in dealt]


def test_an_opcua_printer_without_a_partner_of_its_model_at_the_first_site_stays_at_its_own() -> None:
    a, b, c = DemoPrinter("p001", "d1", "M1"), DemoPrinter("p002", "d2", "M2"), DemoPrinter("p003", "d3", "M2")
    sites = [DemoSite(1, "s-1", (a,)), DemoSite(2, "s-2", (b,)), DemoSite(3, "s-3", (c,))]
    gathered = gather_opcua(sites, {"p002", "p003"})
    assert [s.printers for s in gathered] == [(a,), (b,), (c,)]
    assert [s.opcua_ids for s in gathered] == [frozenset(), {"p002"}, {"p003"}]


def test_no_opcua_printers_leaves_the_deal_as_it_was() -> None:
    dealt = deal(_fleet(20), 5)
    assert gather_opcua(dealt, ()) == dealt


def test_the_clock_starts_the_lead_before_the_next_midnight_and_never_goes_back() -> None:
    lead = HOUR_MS
    start = start_ms(T, 0, lead)
    assert (start + lead) % DAY_MS == 0 and start >= T and start + lead - T <= DAY_MS
    # the last run stopped later (its clock ran fast): after that, the next midnight
    later = start + 3 * HOUR_MS
    again = start_ms(T, later, lead)
    assert again >= later and (again + lead) % DAY_MS == 0 and again - later < DAY_MS
    # already within the lead of a midnight: the one after, so the lead is whole
    near = (T // DAY_MS + 1) * DAY_MS - lead // 2
    assert start_ms(near, 0, lead) == (T // DAY_MS + 2) * DAY_MS - lead


def test_each_model_gets_a_firmware_newer_than_any_its_printers_run() -> None:
    published = releases(T)
    assert {r.model_number for r in published} == {m.model_number for m in MODELS}
    for model in MODELS:
        [release] = [r for r in published if r.model_number == model.model_number]
        assert release.advisory_type == "FIRMWARE" and release.released_at == T and not release.signature
        assert all(compare_versions(release.version, installed) > 0 for installed in model.firmware)
