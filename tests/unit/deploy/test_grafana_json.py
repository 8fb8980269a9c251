"""The Grafana files of deploy/grafana/ are what Grafana and the ClickHouse data source
plugin accept: dashboards with unique ids, a ClickHouse data source on every panel and
target, SQL targets in the plugin's query format, the $site variable on every query; the
provisioning files point at them with credentials from the environment. And the macro
expansion the integration test relies on (`deploy.grafana`) gives what the plugin's
documentation says it gives."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import grafana
from deploy.errors import DashboardError
from deploy.grafana import ALL, FORMAT_TABLE, FORMAT_TIME_SERIES, PLUGIN, TimeRange

GRAFANA = Path(grafana.__file__).resolve().parent / "grafana"
FILES = grafana.dashboard_files()
SITE_FILTER = "$__conditionalAll(site_id IN (${site:singlequote}), $site)"
# The examples of the plugin's README (Macros table): from 1415792726.123, to 1447328726.456.
README_RANGE = TimeRange(1_415_792_726_123, 1_447_328_726_456, 20_000)


def _dashboards() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in FILES:
        yield path.name, grafana.load(path)


def test_the_two_dashboards_are_there() -> None:
    assert [p.name for p in FILES] == ["alerts.json", "fleet-utilisation.json"]
    uids = [d["uid"] for _, d in _dashboards()]
    assert len(set(uids)) == len(uids) == 2


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_panel_has_a_unique_id_a_clickhouse_data_source_and_sql_targets(path: Path) -> None:
    dashboard = grafana.load(path)
    panels = list(grafana.panels(dashboard))
    ids = [p["id"] for p in panels]
    assert panels and len(set(ids)) == len(ids) and all(isinstance(i, int) for i in ids)
    for panel in panels:
        where = f"{path.name} panel {panel['id']}"
        assert panel["datasource"] == {"type": PLUGIN, "uid": "${datasource}"}, where
        assert panel.get("title") and panel.get("type") in ("stat", "table", "timeseries"), where
        assert panel["targets"], where
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), where
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], where
            assert target["editorType"] == "sql" and target["rawSql"].strip(), where
            series = panel["type"] == "timeseries"
            assert target["format"] == (FORMAT_TIME_SERIES if series else FORMAT_TABLE), where
            assert target["queryType"] == ("timeseries" if series else "table"), where
            assert SITE_FILTER in target["rawSql"], f"{where}: not filtered by $site"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_panel_names_the_columns_it_shows(path: Path) -> None:
    for panel in grafana.panels(grafana.load(path)):
        assert grafana.panel_columns(panel) - {"time"}, f"panel {panel['id']} names no column"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_panels_fit_the_24_column_grid_without_overlapping(path: Path) -> None:
    boxes = [(p["id"], p["gridPos"]) for p in grafana.panels(grafana.load(path))]
    for pid, g in boxes:
        assert g["x"] >= 0 and g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24, pid
    for i, (a, ga) in enumerate(boxes):
        for b, gb in boxes[i + 1:]:
            apart = (ga["x"] + ga["w"] <= gb["x"] or gb["x"] + gb["w"] <= ga["x"]
                     or ga["y"] + ga["h"] <= gb["y"] or gb["y"] + gb["h"] <= ga["y"])
            assert apart, f"panels {a} and {b} overlap"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_variables_are_a_clickhouse_data_source_and_the_sites(path: Path) -> None:
    variables = {v["name"]: v for v in grafana.load(path)["templating"]["list"]}
    assert set(variables) == {"datasource", "site"}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == PLUGIN
    site = variables["site"]
    assert site["type"] == "query" and site["datasource"] == {"type": PLUGIN, "uid": "${datasource}"}
    assert site["multi"] and site["includeAll"] and site["current"]["value"] == [ALL]
    assert re.fullmatch(r"SELECT DISTINCT site_id FROM \w+ ORDER BY site_id", grafana.variable_queries(grafana.load(path))["site"])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_query_expands_to_plain_sql(path: Path) -> None:
    for target in grafana.targets(grafana.load(path)):
        for site in ([ALL], ["site-a"], ["site-a", "o'brien"]):
            sql = grafana.expand(target.raw_sql, {"site": site}, {"site": ["site-a", "site-b"]}, README_RANGE)
            assert "$" not in sql, f"{target.dashboard} panel {target.panel_id}: {sql}"


# --- the expansion, against the plugin's documented outputs -------------------------------


@pytest.mark.parametrize(("macro", "expected"), [
    ("$__timeFilter(time)", "time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)"),
    ("$__timeFilter_ms(time)",
     "time >= fromUnixTimestamp64Milli(1415792726123) AND time <= fromUnixTimestamp64Milli(1447328726456)"),
    ("$__fromTime", "toDateTime(1415792726)"),
    ("$__toTime", "toDateTime(1447328726)"),
    ("$__fromTime_ms", "fromUnixTimestamp64Milli(1415792726123)"),
    ("$__toTime_ms", "fromUnixTimestamp64Milli(1447328726456)"),
    ("$__interval_s", "20"),
    ("$__timeInterval(column)", "toStartOfInterval(toDateTime(column), INTERVAL 20 second)"),
    ("$__timeInterval_ms(column)", "toStartOfInterval(toDateTime64(column, 3), INTERVAL 20000 millisecond)"),
    ("$__dateFilter(date)", "date >= toDate('2014-11-12') AND date <= toDate('2015-11-12')"),
])
def test_macros_expand_as_the_plugin_documents(macro: str, expected: str) -> None:
    assert grafana.expand_macros(macro, README_RANGE) == expected


def test_an_interval_under_a_second_is_one_second() -> None:
    assert grafana.expand_macros("$__interval_s", TimeRange(0, 1000, 250)) == "1"


def test_conditional_all_drops_the_condition_for_all_and_keeps_it_otherwise() -> None:
    sql = f"SELECT 1 FROM t WHERE {SITE_FILTER} AND x = 1"
    options = {"site": ["a", "b"]}
    assert grafana.expand(sql, {"site": [ALL]}, options, README_RANGE) == "SELECT 1 FROM t WHERE 1=1 AND x = 1"
    assert grafana.expand(sql, {"site": ["a"]}, options, README_RANGE) == "SELECT 1 FROM t WHERE site_id IN ('a') AND x = 1"
    assert grafana.expand(sql, {"site": ["a", "it's"]}, options, README_RANGE) == (
        "SELECT 1 FROM t WHERE site_id IN ('a','it\\'s') AND x = 1")


def test_a_variable_outside_conditional_all_stands_for_every_option_when_all_is_picked() -> None:
    assert grafana.replace_variables("IN (${site:singlequote})", {"site": [ALL]}, {"site": ["a", "b"]}) == "IN ('a','b')"
    assert grafana.replace_variables("IN ($site)", {"site": ["a", "b"]}, {}) == "IN ('a','b')"


def test_what_the_plugin_would_not_know_is_an_error() -> None:
    with pytest.raises(DashboardError, match=r"\$__timeGroup"):
        grafana.expand_macros("SELECT $__timeGroup(t, 1h)", README_RANGE)
    with pytest.raises(DashboardError, match=r"\$printer"):
        grafana.replace_variables("WHERE device_id = $printer", {"site": ["a"]}, {})
    with pytest.raises(DashboardError, match="no known variable"):
        grafana.apply_conditional_all("$__conditionalAll(x = 1, $printer)", {"site": ["a"]})


# --- provisioning -------------------------------------------------------------------------


def test_the_data_source_is_provisioned_with_credentials_from_the_environment() -> None:
    config = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "clickhouse.yaml").read_text())
    (source,) = config["datasources"]
    assert source["type"] == PLUGIN
    # the uid every dashboard's data source variable starts with
    for _, dashboard in _dashboards():
        (variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == "datasource"]
        assert variable["current"]["value"] == source["uid"]
    json_data, secure = source["jsonData"], source["secureJsonData"]
    for value in (json_data["host"], json_data["port"], json_data["username"], json_data["defaultDatabase"],
                  secure["password"]):
        assert re.fullmatch(r"\$\{?[A-Z][A-Z0-9_]*\}?", str(value)), value
    assert json_data["protocol"] in ("native", "http")


def test_the_dashboards_are_provisioned_from_a_folder() -> None:
    config = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "printfleet.yaml").read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


def test_the_compose_grafana_gets_every_variable_and_folder_the_provisioning_names() -> None:
    compose = yaml.safe_load((GRAFANA.parent / "compose" / "compose.yaml").read_text())
    service = compose["services"]["grafana"]
    datasource_text = (GRAFANA / "provisioning" / "datasources" / "clickhouse.yaml").read_text()
    named = set(re.findall(r"^\s+\w+: \$\{?([A-Z][A-Z0-9_]*)\}?\s*$", datasource_text, re.MULTILINE))
    given = set(service["environment"]) | set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", " ".join(service["entrypoint"])))
    assert named and named <= given
    assert "CLICKHOUSE_PASSWORD" not in service["environment"]  # from the secret file, never a value
    mounts = {target.rsplit(":", 1)[0] if target.endswith(":ro") else target: source
              for source, _, target in (v.partition(":") for v in service["volumes"])}
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "printfleet.yaml").read_text())["providers"][0]
    assert mounts[provider["options"]["path"]] == "../grafana/dashboards"
    assert mounts["/etc/grafana/provisioning/datasources"] == "../grafana/provisioning/datasources"
    assert PLUGIN in service["environment"]["GF_INSTALL_PLUGINS"]
