"""`printfleet alerts forward`: every alert lifecycle change POSTed to a webhook, signed.

    settings.py    WebhookSettings (one frozen object per process)
    signing.py     the signature a receiver checks (pure)
    payload.py     alert message -> JSON body, the filters (pure)
    delivery.py    one POST and what its answer means (the aiohttp boundary)
    forwarder.py   the consumer loop: deliver in order, commit after 2xx
    metrics.py     counters and gauges on the ops listener

The contract a receiver relies on is in docs/alerts.md ("Webhook").
"""
