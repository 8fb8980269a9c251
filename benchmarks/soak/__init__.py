"""`printfleet bench soak`: a large fleet through the whole pipeline for a long time.

Modules, one job each: options (flags), simulator (the simulated sites, a child process
per group of sites, with printhead errors injected on request), processes (the real
`printfleet` commands as child processes), sampler (every 10 s: /metrics, /proc,
ClickHouse, the alerts topic), verdict (is the lag bounded, what limits), checks (drain,
then exactly-once and the fleet state), report and plot (the Markdown table and the
PNG), main (one run, or a step search over fleet sizes). Figures: docs/soak.md.
"""
