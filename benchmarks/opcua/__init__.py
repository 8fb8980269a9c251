"""`printfleet bench opcua`: the collector per OPC UA machine against per printer-API printer."""
