-- Alerts as published on alerts.<lab> (schemas/alert.schema.json): one row per event.
-- (id, seq) identifies an event: id the episode, seq 0 for open, then 1, 2, ... up to
-- resolved. A redelivered event replaces its copy. The table of 001 had nothing in it
-- yet (no writer), so it is recreated with the alert record's columns and that key.
-- `message` stays for existing readers: the English text unless written explicitly.

DROP TABLE IF EXISTS alerts;

CREATE TABLE alerts
(
    id         String COMMENT 'episode id (UUIDv5 of lab, sensor, kind, quantity, started)',
    seq        UInt32 DEFAULT 0 COMMENT '0 for open, then 1, 2, ... within the episode',
    lab        LowCardinality(String),
    sensor     LowCardinality(String),
    kind       LowCardinality(String) COMMENT 'rule, e.g. offline, flatline, threshold.no2_hour',
    quantity   Nullable(String) COMMENT 'null for alerts about the unit itself',
    severity   LowCardinality(String) COMMENT 'info | warning | critical',
    state      LowCardinality(String) COMMENT 'open | update | resolved',
    ts         DateTime64(3, 'UTC') COMMENT 'event time of the measurement behind this event',
    started    DateTime64(3, 'UTC'),
    ended      Nullable(DateTime64(3, 'UTC')),
    value      Nullable(Float64),
    threshold  Nullable(Float64),
    peak       Nullable(Float64) COMMENT 'worst value of the episode so far',
    reference  Nullable(Float64) COMMENT 'what the value was compared with, where it helps',
    unit       LowCardinality(String) DEFAULT '' COMMENT 'of value, threshold and peak',
    window     Nullable(String) COMMENT 'aggregate judged (1h, 1d, ...), null for raw readings',
    message_nl String DEFAULT '',
    message_en String DEFAULT '',
    message    String DEFAULT message_en
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(started)
ORDER BY (lab, id, seq)
SETTINGS non_replicated_deduplication_window = 10000;
