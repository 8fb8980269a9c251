"""`printfleet bench ingest` (`main`): wire bytes, gateway records/s, collector CPU."""
