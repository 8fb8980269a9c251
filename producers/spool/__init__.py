"""The collector's durable spool: records wait on disk until the gateway acknowledged
them (docs/spool.md). `spool.Spool` is the API; the other modules are its parts."""
