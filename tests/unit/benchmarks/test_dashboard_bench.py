"""`printfleet bench dashboard --runs N`: runs alternate, each is shown, the figures are
their medians, and a run that read less than was sent says so."""

from __future__ import annotations

import pytest

from benchmarks.dashboard_runs import Memory, Reads, Run, median_figures, schedule, summarise, table, verdict

MIB = 2**20


def _run(number: int, through_worker: bool, page_ms: float, baseline_ms: float, *, rss_mib: float = 90,
         cpu: float = 4.0, sent: int = 4, short_page: bool = False) -> Run:
    """A run of 2 pages and a baseline, every latency the same (so p50 = p99 = it)."""
    pages = [[page_ms] * sent, [page_ms] * (sent - 1 if short_page else sent)]
    memory = Memory(int(rss_mib * MIB), int((rss_mib + 4) * MIB), int((rss_mib + 3) * MIB), int((rss_mib + 6) * MIB))
    return summarise(number, through_worker, sent, pages, [baseline_ms] * sent, memory, cpu)


def test_with_both_variants_neither_always_goes_first() -> None:
    assert schedule(3, [False, True]) == [(1, False), (1, True), (2, True), (2, False), (3, False), (3, True)]
    assert schedule(2, [True]) == [(1, True), (2, True)]


def test_a_run_is_summarised_over_every_page_with_its_own_baseline() -> None:
    run = summarise(1, False, 3, [[10, 20, 30], [40, 50, 60], [90, 80, 70]], [5, 10, 20], Memory(1, 2, 3, 4), 7.5)
    assert run.page_counts == (3, 3, 3) and run.expected == 9 and run.baseline_count == 3 and run.complete
    assert run.figures.page_p50 == 50  # over the nine events of all pages
    assert run.figures.page_p99 == 90 and run.figures.baseline_p50 == 10
    assert run.figures.ratio == pytest.approx(5.0)
    assert (run.figures.rss_loaded, run.figures.cpu_pct) == (2, 7.5)


def test_a_run_is_short_when_one_page_or_the_baseline_misses_a_record() -> None:
    assert not _run(1, False, 30, 15, short_page=True).complete
    missed = summarise(1, False, 2, [[1, 1], [1, 1]], [1], Memory(1, 1, 1, 1), 1.0)
    assert not missed.complete
    # Extra events on one page do not hide a missing one on the other.
    uneven = summarise(1, False, 2, [[1, 1, 1], [1]], [1, 1], Memory(1, 1, 1, 1), 1.0)
    assert sum(uneven.page_counts) == uneven.expected and not uneven.complete


def test_the_figures_are_each_figures_median_over_the_runs() -> None:
    runs = [_run(1, False, 30, 15, rss_mib=90, cpu=4.0), _run(2, False, 90, 20, rss_mib=100, cpu=9.0),
            _run(3, False, 25, 25, rss_mib=95, cpu=3.0)]
    f = median_figures(runs)
    assert f.page_p50 == 30 and f.baseline_p50 == 20 and f.cpu_pct == 4.0
    assert f.rss_loaded == 99 * MIB
    assert f.ratio == pytest.approx(2.0)  # the runs' own ratios 2.0, 4.5, 1.0: their median, not 30 / 20


def test_the_table_shows_each_run_then_the_median_and_the_verdict_names_a_short_run() -> None:
    runs = [_run(1, False, 30, 15), _run(1, True, 600, 580), _run(2, True, 700, 650, short_page=True),
            _run(2, False, 40, 20), _run(3, False, 20, 20), _run(3, True, 500, 480)]
    text = table(False, runs, {1: True, 2: False, 3: True})
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("| ") and line[2].isdigit()]
    assert [row.split("|")[1].strip() for row in rows] == ["1 (first)", "2 (second)", "3 (first)"]
    assert all("8 / 8 |" in row and "| 4 / 4 |" in row for row in rows)  # read / expected, every run
    median_row = next(line for line in lines if line.startswith("| median of 3"))
    assert "| 30 ms |" in median_row and "| 2.00 |" in median_row
    assert "heartbeat" not in text

    worker = table(True, runs, {})
    assert "7 / 8 SHORT" in worker and "| 1 | 8 / 8 |" in worker
    assert verdict(runs).startswith("SHORT: run 2 (heartbeat produced -> stream worker -> page)")
    assert "fewest on one page 3 of 4" in verdict(runs)
    assert verdict([runs[0], runs[3]]).startswith("Complete: in each of the 2 runs")


def test_a_reader_counts_each_heartbeat_of_the_live_part_once_at_its_first_read() -> None:
    reads = Reads()
    reads.read("p1", 1_000, 1_020, since_ms=0)  # the snapshot, before the live part
    reads.read("p1", 900, 2_000, since_ms=1_000)  # an older heartbeat
    reads.read("p1", 1_500, 1_530, since_ms=1_000)
    reads.read("p2", 1_500, 1_560, since_ms=1_000)  # another printer, same moment
    reads.read("p1", 1_500, 31_500, since_ms=1_000)  # p1 shown again (an alert opened): not a new heartbeat
    assert reads.latencies == [30, 60]
