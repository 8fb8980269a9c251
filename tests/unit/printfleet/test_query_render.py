"""`printfleet query` output formats."""

from __future__ import annotations

import datetime as dt

from printfleet.cmd_query import render


def test_render_formats() -> None:
    columns, rows = ["site", "n", "day"], [("s1", 2, dt.date(2026, 1, 5)), ("s2", None, None)]
    assert render(columns, rows, "csv") == "site,n,day\ns1,2,2026-01-05\ns2,,\n"
    assert render(columns, rows, "json").startswith('[\n {\n  "site": "s1",\n  "n": 2,\n  "day": "2026-01-05"')
    table = render(columns, rows, "table").splitlines()
    assert table[0].split() == ["site", "n", "day"] and table[-1] == "(2 rows)"
