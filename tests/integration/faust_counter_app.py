"""A minimal Faust app for test_faust_worker.py: counts words in a Table and publishes
every new count. Run as `python faust_counter_app.py worker`; configured by environment
so that each test gets its own app id and topics."""

from __future__ import annotations

import os

import faust

BROKER = os.environ["COUNTER_BROKER"]
APP_ID = os.environ["COUNTER_APP_ID"]
INPUT = os.environ["COUNTER_INPUT"]
OUTPUT = os.environ["COUNTER_OUTPUT"]

app = faust.App(
    APP_ID,
    broker=f"kafka://{BROKER}",
    # In memory on purpose: after a restart the counts can only come back from the changelog.
    store="memory://",
    web_enabled=False,
    topic_partitions=4,
    topic_replication_factor=1,
    table_standby_replicas=0,
    consumer_auto_offset_reset="earliest",
    # At least once, a stop between a table update and the next offset commit makes the
    # restarted worker count that record again; transactions make the count exact.
    processing_guarantee="exactly_once",
)
words = app.topic(INPUT, key_type=str, value_type=str, key_serializer="raw", value_serializer="raw")
updates = app.topic(OUTPUT, key_type=str, value_type=str, key_serializer="raw", value_serializer="raw")
counts = app.Table("word_counts", default=int, partitions=4)


@app.agent(words)
async def count(stream: faust.StreamT) -> None:
    async for word, _ in stream.items():
        counts[word] += 1
        await updates.send(key=word, value=str(counts[word]))


if __name__ == "__main__":
    app.main()
