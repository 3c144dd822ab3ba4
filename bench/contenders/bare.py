"""Contender (d), the broker limit: a bare confluent-kafka consumer reading the input.

It decodes nothing and writes nothing; it only notes when each record arrived. The
first PRELOADED records are the throughput input: once it has read them it writes
OUT_DIR/ready with the wall time of the 10 %-th and of the last of them. At the end it
writes OUT_DIR/result.json with the latencies (arrival minus the producer's timestamp)
of the records after them.

    python -m bench.contenders.bare BROKER TOPIC GROUP EXPECT PRELOADED OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer

from bench.measure import peak_rss_mib, percentiles
from livinglab.kafka import consumer_config

TIMEOUT_S = 120.0
READY, RESULT = "ready", "result.json"


def main(broker: str, topic: str, group: str, expect: int, preloaded: int, out: Path) -> None:
    consumer = Consumer(consumer_config(broker, group, **{"fetch.wait.max.ms": 10}))
    consumer.subscribe([topic])
    arrivals: list[float] = []
    latencies: list[float] = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(arrivals) < expect and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=10_000, timeout=0.1):
            if msg.error():
                continue
            now = time.time()
            arrivals.append(now)
            if len(arrivals) > preloaded:
                latencies.append(now * 1000 - msg.timestamp()[1])
            elif len(arrivals) == preloaded:
                marks = {"at10": arrivals[preloaded // 10], "last": now}
                (out / READY).write_text(json.dumps(marks))
    consumer.close()
    result = {
        "consumed": len(arrivals),
        "latency_ms": percentiles(latencies),
        "peak_rss_mib": peak_rss_mib(os.getpid()),  # the harness cannot read it after exit
    }
    (out / RESULT).write_text(json.dumps(result))


if __name__ == "__main__":
    broker, topic, group, expect, preloaded, out = sys.argv[1:7]
    main(broker, topic, group, int(expect), int(preloaded), Path(out))
