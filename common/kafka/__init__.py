"""The one Kafka layer: settings, clients, the topic registry, topic admin, dead letters.

    settings.py    KafkaSettings: where and how to connect, prefix, replication
    clients.py     every producer, consumer, admin client (and Faust's options)
    topics.py      the registry: every topic with partitions, policy, retention
    admin.py       plan / apply / check topics against the registry (the only creator)
    deadletter.py  the dead-letter header contract
    errors.py      KafkaUnavailable, TopicMismatch
"""
