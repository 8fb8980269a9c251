"""What every printfleet package may import: the root error, settings, backoff and Kafka.

Nothing here imports producers/, streams/, sinks/, deploy/ or the CLI (printfleet/).
"""
