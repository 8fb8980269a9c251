"""Everything before Kafka: the site side and the ingestion gateway.

    collector/     the site collector: polls printers, builds records, uploads
    spool/         the collector's durable on-disk spool
    gateway/       the cloud's ingestion gateway: HTTPS in, Kafka out
    simulator/     a simulated printer fleet serving the printer API (tests, demo)
    batch_format   the upload body between collector and gateway
    errors         ProducerError and its subtree
"""
