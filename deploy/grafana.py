"""The Grafana dashboards of deploy/grafana/ as data: their panels, the SQL of each panel
target, the columns each panel shows, and that SQL expanded the way Grafana and the
ClickHouse data source plugin (grafana-clickhouse-datasource) expand it before
ClickHouse sees it.

Called by the tests (tests/unit/deploy/test_grafana_json.py checks the JSON,
tests/integration/test_grafana_dashboards.py runs every expanded query on a ClickHouse
the sink filled), so a dashboard that names a missing column or a macro the plugin does
not know fails there, not in front of a user. Pure: no I/O but reading the files.

The expansion follows the plugin in two steps, as it runs:

1. in the browser (`src/data/CHDatasource.ts`, `applyTemplateVariables`):
   `$__conditionalAll(condition, $var)` becomes `1=1` when the variable selects All (or
   nothing), else the condition; then Grafana replaces the template variables:
   `${var:singlequote}` as `'a','b'` (quotes escaped with a backslash), `$var` and `${var}`
   with the plugin's own format, `'a','b'` for a multi-value variable;
2. in the backend (`pkg/macros/macros.go`): `$__timeFilter(c)` becomes
   `c >= toDateTime(<from s>) AND c <= toDateTime(<to s>)`, `$__timeFilter_ms(c)` the same
   with `fromUnixTimestamp64Milli(<ms>)`, `$__fromTime`/`$__toTime` `toDateTime(<s>)`,
   `$__fromTime_ms`/`$__toTime_ms` `fromUnixTimestamp64Milli(<ms>)`, `$__dateFilter(c)`
   `c >= toDate('<day>') AND c <= toDate('<day>')`, `$__interval_s` the interval in whole
   seconds (at least 1), `$__timeInterval(c)`
   `toStartOfInterval(toDateTime(c), INTERVAL <s> second)` and `$__timeInterval_ms(c)`
   `toStartOfInterval(toDateTime64(c, 3), INTERVAL <ms> millisecond)`.

A macro or variable this module does not know is an error (`DashboardError`), never left
in the SQL.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from deploy.errors import DashboardError

PLUGIN: Final = "grafana-clickhouse-datasource"
DASHBOARDS: Final = Path(__file__).resolve().parent / "grafana" / "dashboards"
ALL: Final = "$__all"
# sqlutil's FormatQueryOption, which the plugin's backend reads from a target's `format`.
FORMAT_TIME_SERIES: Final = 0
FORMAT_TABLE: Final = 1

_CONDITIONAL_ALL: Final = "$__conditionalAll("
_VARIABLE: Final = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")
_MACRO: Final = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")
_LABEL: Final = re.compile(r"\$\{__field\.labels\.(\w+)\}")
_STAT_FIELDS: Final = re.compile(r"^/\^\(?([\w|]+)\)?\$/$")


@dataclass(frozen=True, slots=True)
class TimeRange:
    """The dashboard's time picker, in ms since the epoch, and the panel's interval."""

    from_ms: int
    to_ms: int
    interval_ms: int


@dataclass(frozen=True, slots=True)
class Target:
    """One query of one panel."""

    dashboard: str
    panel_id: int
    panel_title: str
    ref_id: str
    raw_sql: str
    format: int
    columns: frozenset[str]  # what the panel reads from the result


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return dashboard


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_columns(panel: Mapping[str, Any]) -> frozenset[str]:
    """The result columns a panel refers to by name: `time` for a time series, the labels
    its display name shows, the fields its overrides, stat options and organize
    transformation name."""
    names: set[str] = set()
    if panel.get("type") == "timeseries":
        names.add("time")
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    names.update(_LABEL.findall(str(defaults.get("displayName", ""))))
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        if override.get("matcher", {}).get("id") == "byName":
            names.add(str(override["matcher"]["options"]))
    fields = str(panel.get("options", {}).get("reduceOptions", {}).get("fields", ""))
    match = _STAT_FIELDS.match(fields)
    if match:
        names.update(match.group(1).split("|"))
    for transformation in panel.get("transformations", []):
        if transformation.get("id") == "organize":
            names.update(transformation["options"].get("indexByName", {}))
    return frozenset(names)


def targets(dashboard: Mapping[str, Any]) -> Iterator[Target]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if not target.get("rawSql"):
                raise DashboardError(f"{dashboard.get('title')}: panel {panel.get('title')!r} has a target without rawSql")
            yield Target(str(dashboard.get("uid")), int(panel["id"]), str(panel.get("title", "")), str(target["refId"]),
                         str(target["rawSql"]), int(target.get("format", FORMAT_TABLE)), panel_columns(panel))


def variable_queries(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """The SQL of each query variable, by name."""
    out: dict[str, str] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            out[variable["name"]] = str(query.get("rawSql", "") if isinstance(query, Mapping) else query)
    return out


def expand(sql: str, values: Mapping[str, Sequence[str]], options: Mapping[str, Sequence[str]], time: TimeRange) -> str:
    """`sql` as ClickHouse receives it. `values` holds each variable's selection (`[ALL]`
    for All), `options` every value it offers (what All stands for)."""
    return expand_macros(replace_variables(apply_conditional_all(sql, values), values, options), time)


def apply_conditional_all(sql: str, values: Mapping[str, Sequence[str]]) -> str:
    """The browser's first step: each `$__conditionalAll(condition, $var)`, innermost and
    last first as the plugin walks them, becomes `1=1` or the condition."""
    while (start := sql.rfind(_CONDITIONAL_ALL)) != -1:
        args, end = _macro_args(sql, start + len(_CONDITIONAL_ALL) - 1)
        if len(args) != 2:
            raise DashboardError(f"$__conditionalAll takes a condition and a variable: {sql[start:end]}")
        condition, variable = args
        name = re.search(r"(?<=\$\{)\w+(?=\})|(?<=\$)\w+", variable.strip())
        if name is None or name.group(0) not in values:
            raise DashboardError(f"$__conditionalAll names no known variable: {variable.strip()}")
        selected = list(values[name.group(0)])
        sql = sql[:start] + ("1=1" if selected in ([], [ALL]) else condition) + sql[end:]
    return sql


def _macro_args(sql: str, open_paren: int) -> tuple[list[str], int]:
    """The comma-separated arguments of the call whose `(` is at `open_paren` (commas in
    nested parentheses stay), and the index after its `)`."""
    depth, last, args = 0, open_paren + 1, []
    for i in range(open_paren, len(sql)):
        char = sql[i]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[last:i])
                return args, i + 1
        elif char == "," and depth == 1:
            args.append(sql[last:i])
            last = i + 1
    raise DashboardError(f"unbalanced parentheses after {sql[max(0, open_paren - 20):open_paren + 1]!r}")


def replace_variables(sql: str, values: Mapping[str, Sequence[str]], options: Mapping[str, Sequence[str]]) -> str:
    """Grafana's template replacement with the plugin's default format."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        fmt = match.group(2) or ""
        if name not in values:
            raise DashboardError(f"unknown template variable ${name}")
        selected = list(values[name])
        chosen = list(options.get(name, ())) if selected == [ALL] else selected
        if fmt == "singlequote":
            return ",".join("'" + v.replace("'", "\\'") + "'" for v in chosen)
        if fmt:
            raise DashboardError(f"variable format {fmt!r} is not one the dashboards use")
        return "'" + "','".join(chosen) + "'"

    return _VARIABLE.sub(one, sql)


def expand_macros(sql: str, time: TimeRange) -> str:
    """The backend's step: the plugin's macros (pkg/macros/macros.go)."""
    start, end = time.from_ms // 1000, time.to_ms // 1000
    seconds = max(time.interval_ms // 1000, 1)
    milliseconds = max(time.interval_ms, 1)

    def day(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d")

    def one(match: re.Match[str]) -> str:
        name, args = match.group(1), [a.strip() for a in (match.group(2) or "").split(",") if a.strip()]
        plain = {
            "fromTime": f"toDateTime({start})", "toTime": f"toDateTime({end})",
            "fromTime_ms": f"fromUnixTimestamp64Milli({time.from_ms})",
            "toTime_ms": f"fromUnixTimestamp64Milli({time.to_ms})", "interval_s": str(seconds),
        }
        if name in plain and not args:
            return plain[name]
        one_column = {
            "timeFilter": f"{{c}} >= toDateTime({start}) AND {{c}} <= toDateTime({end})",
            "timeFilter_ms": f"{{c}} >= fromUnixTimestamp64Milli({time.from_ms}) AND "
                             f"{{c}} <= fromUnixTimestamp64Milli({time.to_ms})",
            "dateFilter": f"{{c}} >= toDate('{day(time.from_ms)}') AND {{c}} <= toDate('{day(time.to_ms)}')",
            "timeInterval": f"toStartOfInterval(toDateTime({{c}}), INTERVAL {seconds} second)",
            "timeInterval_ms": f"toStartOfInterval(toDateTime64({{c}}, 3), INTERVAL {milliseconds} millisecond)",
        }
        if name in one_column and len(args) == 1:
            return one_column[name].replace("{c}", args[0])
        raise DashboardError(f"$__{name}({', '.join(args)}) is no macro of the ClickHouse plugin that this module knows")

    return _MACRO.sub(one, sql)
