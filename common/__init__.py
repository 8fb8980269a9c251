"""What every printfleet package may import: the root error, settings, backoff and Kafka.

    errors.py    PrintfleetError, the root of every printfleet error (draws the tree)
    settings.py  settings objects from flags and PRINTFLEET_* variables
    backoff.py   retry timing with jitter
    kafka/       the one Kafka layer: connection settings, clients, topic registry

It imports none of producers/, streams/, sinks/, deploy/ or the CLI (printfleet/); of
schemas/ only the record kind names (`schemas.kinds`), for the topic registry.
"""
