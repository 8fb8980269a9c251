"""The ingestion gateway (`printfleet gateway`): authenticates sites, checks every record,
produces to Kafka and answers only after Kafka acknowledged (docs/gateway.md)."""
