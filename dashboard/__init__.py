"""`printfleet dashboard`: the fleet web page's server (docs/dashboard.md).

`server` (the aiohttp app and its routes) reads the live fleet from `feed` (one Kafka
consumer of fleet.state and alerts, fanned out to the pages' event streams), the
history from `store` (ClickHouse), and checks every request with `access`. `fleet` is
the pure in-memory state; `static/` holds the page.
"""
