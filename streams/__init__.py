"""Stream processing: the Faust worker (`printfleet worker`) and the logic it calls (no I/O).

The worker: `app` (Faust: group, ticks, timers), `telemetry_reader` (the owned telemetry
and roll-up partitions, read with a plain aiokafka consumer from the partition books),
`device_agent` (state cache, checkpoints, outputs), `rollups` (site and cohort states),
`partition_transactions` (a partition's outputs, states and book in one Kafka
transaction), `partition_book` (where each input partition stands: none lost, none
applied twice), `decoding` (a message that does not decode, kept with its reason),
`catalogue` (signed releases), `worker_settings`.

The logic: no Kafka, no Faust and no I/O in these modules; every state is a dataclass with
`to_dict()`/`from_dict()` for its changelog, every step returns a new state plus the
records to produce, and every output record has a deterministic id (replays are normal,
STYLE convention 8). Modules, one job each:

    words          status/activity in words ("Powered on, printing")
    eta            estimated time to completion from heartbeats
    fleet_state    per-printer fleet view, offline detection (apply_heartbeat, check_offline)
    timeline       window arithmetic: buckets, time per bucket, counter deltas
    utilisation    hourly/daily utilisation windows per printer, lateness, dedup
    site_rollup    a site's windows summed
    benchmarks     anonymous cohort percentiles (>= k sites), a site's position
    alerts         alert lifecycle (raised/updated/cleared), no storms
    alert_rules    records -> alert conditions (events, consumables, supplies, offline)
    maintenance    remaining useful life from wear trends, layer-duration anomalies
    alert_device   one step per record for the alert rules of a printer
    device         everything about one printer: one step per record and per tick
    advisories     Ed25519-signed release catalogue -> update advisories
    plain, ids, errors   state <-> dict, deterministic ids, the error tree
"""
