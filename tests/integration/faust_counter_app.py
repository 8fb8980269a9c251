"""A minimal Faust app for test_faust_worker.py: counts words in a Table and publishes
every new count. Run as `python faust_counter_app.py worker`; configured by environment
so that each test gets its own app id and topics.

Faust delivers at least once: after a restart the worker may see again records it had
already applied to the table (observed here, even with processing_guarantee="exactly_once"),
and not always in offset order. So the agent is idempotent, the way every printfleet agent
must be: each record carries an id (a per-word sequence number here), and the table keeps
the ids it applied next to the count. A high-water mark would not do: a redelivery out of
order would make it skip records never counted."""

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
)
words = app.topic(INPUT, key_type=str, value_type=str, key_serializer="raw", value_serializer="raw")
updates = app.topic(OUTPUT, key_type=str, value_type=str, key_serializer="raw", value_serializer="raw")
counts = app.Table("word_counts", default=dict, partitions=4)


@app.agent(words)
async def count(stream: faust.StreamT[str]) -> None:
    async for word, seq in stream.items():
        state = counts[word]
        seen = state.get("seen", [])
        if int(seq) in seen:
            continue  # a redelivery: already counted
        # Assigned, not mutated in place: only assignment writes the changelog.
        counts[word] = {"count": state.get("count", 0) + 1, "seen": [*seen, int(seq)]}
        await updates.send(key=word, value=f"{counts[word]['count']}:{seq}")


if __name__ == "__main__":
    app.main()
