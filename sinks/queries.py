"""Named analytics queries over the sink's tables: `printfleet query NAME`.

Each query is documented SQL with two parameters, bound by ClickHouse (never formatted
into the text): `site` ('' for every site) and `days` (how far back, by event time).
Records that the streams may emit more than once for the same thing (a utilisation
window, an alert's lifecycle, a printer's consumables) are read at their latest version
(`LIMIT 1 BY`), so repeats never inflate a figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sinks.errors import QueryError


@dataclass(frozen=True, slots=True)
class NamedQuery:
    name: str
    description: str
    sql: str


_SITE: Final = "({site:String} = '' OR site_id = {site:String})"
_SINCE: Final = "event_time >= now64(3) - toIntervalDay({days:UInt32})"
# Every printer's hourly windows, each at its latest version. The streams also emit daily
# windows (each the sum of its hours): summing both would count every hour twice.
_HOURLY: Final = f"""(SELECT * FROM utilisation WHERE {_SITE} AND {_SINCE}
        AND dateDiff('second', window_start, window_end) = 3600
      ORDER BY event_time DESC LIMIT 1 BY device_id, window_start)"""

QUERIES: Final[dict[str, NamedQuery]] = {q.name: q for q in (
    NamedQuery(
        "utilisation-weekly",
        "Fleet utilisation per site and week: share of tracked time spent printing, printers, jobs completed.",
        f"""SELECT site_id, toMonday(window_start) AS week,
    uniqExact(device_id) AS printers,
    round(100 * sum(printing_s) / nullIf(sum(printing_s + warming_s + cooling_s + idle_s + error_s + unreachable_s), 0), 1) AS utilisation_pct,
    sum(jobs_completed) AS jobs_completed,
    round(sum(material_consumed_kg), 2) AS material_kg
FROM {_HOURLY}
GROUP BY site_id, week
ORDER BY site_id, week""",
    ),
    NamedQuery(
        "kpi-trend",
        "Daily KPIs per site: utilisation, jobs completed, layers printed, material used, packing density.",
        f"""SELECT site_id, toDate(window_start) AS day,
    round(100 * sum(printing_s) / nullIf(sum(printing_s + warming_s + cooling_s + idle_s + error_s + unreachable_s), 0), 1) AS utilisation_pct,
    sum(jobs_completed) AS jobs_completed,
    sum(layers_printed) AS layers_printed,
    round(sum(material_consumed_kg), 2) AS material_kg,
    round(avg(packing_density_pct), 1) AS packing_density_pct
FROM {_HOURLY}
GROUP BY site_id, day
ORDER BY site_id, day""",
    ),
    NamedQuery(
        "top-event-codes",
        "The 20 most frequent event codes, with severity, how many printers raised them and which most.",
        f"""SELECT code, severity, sum(n) AS events, uniqExact(device_id) AS printers,
    arrayStringConcat(arrayMap(p -> concat(p.1, ' (', toString(p.2), ')'),
        arraySlice(arrayReverseSort(p -> p.2, groupArray((device_id, n))), 1, 3)), ', ') AS top_printers
FROM (SELECT code, severity, device_id, sum(events) AS n
      FROM system_event_daily
      WHERE {_SITE} AND day >= today() - {{days:UInt32}}
      GROUP BY code, severity, device_id)
GROUP BY code, severity
ORDER BY events DESC, code
LIMIT 20""",
    ),
    NamedQuery(
        "consumables",
        "Printheads per printer and slot at their latest report: age, usage hours, agent used, status, warranty.",
        f"""SELECT site_id, device_id, slot, printhead_type, status,
    dateDiff('day', installed_at, event_time) AS age_days,
    round(usage_time_s / 3600, 1) AS usage_hours,
    round(agent_consumed_cm3, 1) AS agent_cm3,
    warranty_status, warranty_expiry_date
FROM (SELECT * FROM printhead_system_printheads WHERE {_SITE} AND {_SINCE}
      ORDER BY event_time DESC LIMIT 1 BY device_id, slot)
ORDER BY site_id, device_id, slot""",
    ),
    NamedQuery(
        "replacements",
        "Upcoming replacements: consumables whose latest report is not OK (printheads, agents, cleaning rolls).",
        f"""SELECT * FROM (
SELECT site_id, device_id, 'printhead' AS consumable, toString(slot) AS which, status, CAST(NULL, 'Nullable(Float64)') AS level_pct
FROM (SELECT * FROM printhead_system_printheads WHERE {_SITE} AND {_SINCE} ORDER BY event_time DESC LIMIT 1 BY device_id, slot)
WHERE status NOT IN ('OK', 'UNKNOWN')
UNION ALL
SELECT site_id, device_id, 'agent', agent_type, consumable_status, round(consumable_level_pct, 1)
FROM (SELECT * FROM agent_system_agents WHERE {_SITE} AND {_SINCE} ORDER BY event_time DESC LIMIT 1 BY device_id, agent_type)
WHERE consumable_status NOT IN ('OK', 'UNKNOWN')
UNION ALL
SELECT site_id, device_id, 'cleaning roll', part_number, status, round(100 - usage_pct, 1)
FROM (SELECT * FROM cleaning_roll WHERE {_SITE} AND {_SINCE} ORDER BY event_time DESC LIMIT 1 BY device_id)
WHERE status NOT IN ('OK', 'UNKNOWN'))
ORDER BY site_id, device_id, consumable, which""",
    ),
    NamedQuery(
        "material-recycling",
        "Material recycling trend per site and week: mean recycled share of the installed build units' material.",
        f"""SELECT site_id, toMonday(event_time) AS week, ifNull(installed_build_unit_material_type, '') AS material,
    round(avg(installed_build_unit_recycled_material_pct), 1) AS recycled_pct,
    count() AS reports
FROM build_unit
WHERE {_SITE} AND {_SINCE} AND installed_build_unit_recycled_material_pct IS NOT NULL
GROUP BY site_id, week, material
ORDER BY site_id, week, material""",
    ),
    NamedQuery(
        "job-durations",
        "Job duration distribution by print mode (completed jobs): count and percentiles in minutes.",
        f"""SELECT print_mode, count() AS jobs,
    round(quantileExact(0.1)(minutes), 1) AS p10_min,
    round(quantileExact(0.5)(minutes), 1) AS p50_min,
    round(quantileExact(0.9)(minutes), 1) AS p90_min,
    round(max(minutes), 1) AS max_min
FROM (SELECT print_mode, dateDiff('millisecond', started_at, completed_at) / 60000 AS minutes
      FROM job WHERE {_SITE} AND {_SINCE} AND started_at IS NOT NULL AND completed_at IS NOT NULL
      ORDER BY event_time DESC LIMIT 1 BY job_id)
GROUP BY print_mode
ORDER BY jobs DESC, print_mode""",
    ),
    NamedQuery(
        "benchmark-position",
        "A site against its cohort: per day and printer model, the site's utilisation and where it stands among the "
        "cohort's sites (anonymous percentiles from the streams' benchmarks, published for >= 5 sites).",
        f"""SELECT u.site_id AS site_id, toDate(u.window_start) AS day, m.model_number AS model_number,
    round(100 * sum(u.printing_s) / nullIf(sum(u.printing_s + u.warming_s + u.cooling_s + u.idle_s + u.error_s + u.unreachable_s), 0), 1) AS site_utilisation_pct,
    any(b.site_count) AS cohort_sites,
    round(any(b.utilisation_p25_pct), 1) AS cohort_p25_pct,
    round(any(b.utilisation_p50_pct), 1) AS cohort_p50_pct,
    round(any(b.utilisation_p75_pct), 1) AS cohort_p75_pct,
    multiIf(site_utilisation_pct < cohort_p25_pct, 'bottom quarter', site_utilisation_pct < cohort_p50_pct, 'lower middle',
            site_utilisation_pct < cohort_p75_pct, 'upper middle', 'top quarter') AS position
FROM {_HOURLY} AS u
INNER JOIN (SELECT device_id, argMax(model_number, event_time) AS model_number FROM device_identity GROUP BY device_id) AS m
    ON m.device_id = u.device_id
INNER JOIN (SELECT * FROM benchmark ORDER BY event_time DESC LIMIT 1 BY cohort_id) AS b
    ON b.model_number = m.model_number AND toDate(b.window_start) = toDate(u.window_start)
GROUP BY site_id, day, model_number
ORDER BY site_id, day, model_number""",
    ),
    NamedQuery(
        "alerts",
        "Alerts per rule and severity: raised, cleared, still open, and time to clear (median, max) in minutes.",
        f"""SELECT rule_id, severity, count() AS raised, countIf(cleared_at IS NOT NULL) AS cleared,
    countIf(cleared_at IS NULL) AS open,
    round(quantileExactIf(0.5)(dateDiff('millisecond', raised_at, cleared_at) / 60000, cleared_at IS NOT NULL), 1) AS median_clear_min,
    round(maxIf(dateDiff('millisecond', raised_at, cleared_at) / 60000, cleared_at IS NOT NULL), 1) AS max_clear_min
FROM (SELECT * FROM alert WHERE {_SITE} AND {_SINCE} ORDER BY event_time DESC LIMIT 1 BY alert_id)
GROUP BY rule_id, severity
ORDER BY raised DESC, rule_id""",
    ),
)}


def get(name: str) -> NamedQuery:
    try:
        return QUERIES[name]
    except KeyError:
        raise QueryError(f"no query named {name!r}; known: {', '.join(sorted(QUERIES))}") from None


# The dashboard's queries (`dashboard.store`, docs/dashboard.md). Unlike the named queries
# above, each is bound to exactly one site (`site_id = {site}`: no '' for every site), so
# a page can never be shown another site's rows; `printer` '' means all of the site's.
_ONE_SITE: Final = "site_id = {site:String} AND ({printer:String} = '' OR device_id = {printer:String})"
_UTILISATION_BUCKETS: Final = """SELECT {bucket} AS bucket, uniqExact(device_id) AS printers,
    sum(w_printing) AS printing_s, sum(w_warming) AS warming_s, sum(w_cooling) AS cooling_s,
    sum(w_idle) AS idle_s, sum(w_error) AS error_s, sum(w_unreachable) AS unreachable_s,
    round(100 * printing_s / nullIf(printing_s + warming_s + cooling_s + idle_s + error_s + unreachable_s, 0), 1)
        AS utilisation_pct,
    sum(w_jobs) AS jobs_completed, sum(w_layers) AS layers_printed,
    round(sum(w_material), 3) AS material_consumed_kg,
    round(avg(w_packing), 1) AS packing_density_pct,
    round(avg(w_recycled), 1) AS material_recycled_pct,
    round(sum(w_agent), 1) AS agent_consumed_cm3
FROM (SELECT device_id, window_start, printing_s AS w_printing, warming_s AS w_warming, cooling_s AS w_cooling,
          idle_s AS w_idle, error_s AS w_error, unreachable_s AS w_unreachable, jobs_completed AS w_jobs,
          layers_printed AS w_layers, material_consumed_kg AS w_material, packing_density_pct AS w_packing,
          material_recycled_pct AS w_recycled, agent_consumed_cm3 AS w_agent
      FROM utilisation
      WHERE {one_site} AND window_start >= now64(3) - toIntervalDay({{days:UInt32}})
        AND dateDiff('second', window_start, window_end) = 3600
      ORDER BY event_time DESC LIMIT 1 BY device_id, window_start)
GROUP BY bucket
ORDER BY bucket"""
# Per hour or per UTC day, summed over the site's (or one printer's) hourly windows, each
# at its latest version (avg of a Nullable ignores the NULLs: the mean over the windows
# that had a value).
DASHBOARD_UTILISATION: Final = {
    grain: _UTILISATION_BUCKETS.format(bucket=bucket, one_site=_ONE_SITE)
    for grain, bucket in (("hour", "toStartOfHour(window_start)"), ("day", "toStartOfDay(window_start)"))
}
# The anonymous benchmarks of the cohorts of the models the site's (or the printer's)
# printers are, per day, each cohort window at its latest version.
DASHBOARD_BENCHMARK: Final = f"""SELECT toStartOfDay(window_start) AS bucket, model_number, material_type,
    site_count, device_count, utilisation_p25_pct, utilisation_p50_pct, utilisation_p75_pct,
    packing_density_p50_pct, material_recycled_p50_pct, jobs_completed_p50_per_day
FROM (SELECT * FROM benchmark
      WHERE window_start >= now64(3) - toIntervalDay({{days:UInt32}})
        AND model_number IN (SELECT model_number FROM device_identity WHERE {_ONE_SITE})
      ORDER BY event_time DESC LIMIT 1 BY cohort_id)
ORDER BY bucket, model_number, material_type"""
_LIFECYCLE_ORDER: Final = "indexOf(['RAISED', 'UPDATED', 'CLEARED'], lifecycle)"
_SEVERITY_ORDER: Final = "indexOf(['UNKNOWN', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'], severity)"
# Alerts whose latest lifecycle record is at most `days` old, open or cleared, newest
# first; `min_rank` 0: any severity, else at least that index of the Severity symbols.
_ALERT_FIELDS: Final = """record_id, schema_version, site_id, device_id, event_time, alert_id,
    dedup_key, lifecycle, severity, rule_id, subsystem, summary, source_event_code, raised_at, cleared_at,
    predicted_failure_at, recommended_action, notify_service, confidence, occurrences"""


def _latest_alerts(where: str) -> str:
    """The latest lifecycle record of every alert whose records pass `where` (as
    `printfleet alerts list` orders them: event time, then lifecycle step, then offset)."""
    return (f"(SELECT * FROM alert WHERE {where} "
            f"ORDER BY event_time DESC, {_LIFECYCLE_ORDER} DESC, kafka_offset DESC LIMIT 1 BY alert_id)")


DASHBOARD_RECENT_ALERTS: Final = f"""SELECT {_ALERT_FIELDS}
FROM {_latest_alerts(f"{_ONE_SITE} AND ({{rule:String}} = '' OR rule_id = {{rule:String}}) "
                     "AND event_time >= now64(3) - toIntervalDay({days:UInt32})")}
WHERE {{min_rank:UInt8}} = 0 OR {_SEVERITY_ORDER} - 1 >= {{min_rank:UInt8}}
ORDER BY event_time DESC, alert_id
LIMIT {{limit:UInt32}}"""
# The recommended parts of those alert records (the sink's child table of the array).
DASHBOARD_ALERT_PARTS: Final = """SELECT record_id, part_number, description, quantity
FROM alert_recommended_parts
WHERE site_id = {site:String} AND has({record_ids:Array(String)}, record_id)
ORDER BY record_id, idx
LIMIT 1 BY record_id, idx"""
# Every site's open alerts (latest lifecycle record not CLEARED), read once when the
# dashboard starts: its memory then holds alerts older than the alerts topic's retention
# too. Not an answer to any request: the server filters by site before anything is shown.
DASHBOARD_OPEN_ALERTS: Final = f"""SELECT {_ALERT_FIELDS}
FROM {_latest_alerts("1")}
WHERE lifecycle != 'CLEARED'"""
DASHBOARD_OPEN_ALERT_PARTS: Final = """SELECT record_id, part_number, description, quantity
FROM alert_recommended_parts
WHERE has({record_ids:Array(String)}, record_id)
ORDER BY record_id, idx
LIMIT 1 BY record_id, idx"""
# One printer's installed consumables at their latest report. remaining_pct: life left
# (printheads against the nominal life `printhead_life_h`; agents: their level).
DASHBOARD_CONSUMABLES: Final = """SELECT kind, item, part_number, serial_number, status, remaining_pct, reported_at FROM (
SELECT 'printhead' AS kind, concat('printhead-', toString(slot)) AS item,
    CAST(part_number, 'Nullable(String)') AS part_number, CAST(serial_number, 'Nullable(String)') AS serial_number,
    CAST(status, 'String') AS status,
    CAST(round(greatest(0, 100 - 100 * usage_time_s / 3600 / {printhead_life_h:Float64}), 1), 'Nullable(Float64)')
        AS remaining_pct,
    event_time AS reported_at
FROM (SELECT * FROM printhead_system_printheads WHERE site_id = {site:String} AND device_id = {printer:String}
      ORDER BY event_time DESC LIMIT 1 BY slot)
UNION ALL
SELECT 'cleaning-roll', 'cleaning-roll', CAST(part_number, 'Nullable(String)'), CAST(NULL, 'Nullable(String)'),
    CAST(status, 'String'), CAST(round(greatest(0, 100 - usage_pct), 1), 'Nullable(Float64)'), event_time
FROM (SELECT * FROM cleaning_roll WHERE site_id = {site:String} AND device_id = {printer:String}
      ORDER BY event_time DESC LIMIT 1)
UNION ALL
SELECT 'agent', concat('agent-', CAST(agent_type, 'String')), CAST(NULL, 'Nullable(String)'),
    CAST(NULL, 'Nullable(String)'), CAST(consumable_status, 'String'),
    CAST(round(consumable_level_pct, 1), 'Nullable(Float64)'), event_time
FROM (SELECT * FROM agent_system_agents WHERE site_id = {site:String} AND device_id = {printer:String}
      ORDER BY event_time DESC LIMIT 1 BY agent_type)
UNION ALL
SELECT 'build-unit', 'build-unit', CAST(installed_build_unit_part_number, 'Nullable(String)'),
    CAST(installed_build_unit_serial_number, 'Nullable(String)'), CAST(installed_build_unit_status, 'String'),
    CAST(NULL, 'Nullable(Float64)'), event_time
FROM (SELECT * FROM build_unit WHERE site_id = {site:String} AND device_id = {printer:String}
      ORDER BY event_time DESC LIMIT 1)
WHERE installed_build_unit_part_number IS NOT NULL)
ORDER BY kind, item"""
