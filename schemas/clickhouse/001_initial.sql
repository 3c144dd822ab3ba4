-- The analysts' contract. Every table deduplicates: ReplacingMergeTree on a
-- deterministic key, plus insert-block deduplication by token
-- (topic:partition:firstOffset-lastOffset) so a replayed batch changes nothing.
-- Query with FINAL (or argMax by version) to see the deduplicated state at once;
-- background merges converge to it anyway.

CREATE TABLE IF NOT EXISTS uplinks
(
    dev_eui          String,
    session          UInt32,
    f_cnt            UInt32,
    lab              LowCardinality(String),
    sensor           LowCardinality(String),
    received_at      DateTime64(3, 'UTC'),
    f_port           Nullable(UInt8),
    source           LowCardinality(String),
    frequency        Nullable(UInt64),
    spreading_factor Nullable(UInt8),
    gateway_ids      Array(String),
    gateway_rssi     Array(Nullable(Float32)),
    gateway_snr      Array(Nullable(Float32)),
    payload          String COMMENT 'decrypted application payload, hex',
    version          UInt32 COMMENT 'grows as late gateway copies are merged'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(received_at)
ORDER BY (dev_eui, session, f_cnt)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS readings
(
    lab         LowCardinality(String),
    sensor      LowCardinality(String),
    dev_eui     String,
    ts          DateTime64(3, 'UTC') COMMENT 'event time',
    quantity    LowCardinality(String),
    value       Float64 COMMENT 'calibrated value',
    raw_value   Float64 COMMENT 'value as measured',
    unit        LowCardinality(String),
    flags       UInt32 COMMENT 'quality flag bits',
    calibration LowCardinality(String),
    session     UInt32,
    f_cnt       UInt32
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (lab, sensor, quantity, ts, session, f_cnt)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS aggregates
(
    lab          LowCardinality(String),
    sensor       LowCardinality(String),
    quantity     LowCardinality(String),
    window       LowCardinality(String),
    window_start DateTime64(3, 'UTC'),
    window_end   DateTime64(3, 'UTC'),
    count        UInt32,
    coverage     Float32,
    mean         Float64 COMMENT 'energetic mean (LAeq) for noise levels, arithmetic otherwise',
    min          Float64,
    max          Float64,
    version      UInt32 COMMENT 'corrections carry a higher version'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (lab, sensor, quantity, window, window_start)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS alerts
(
    id        String,
    lab       LowCardinality(String),
    sensor    LowCardinality(String),
    kind      LowCardinality(String),
    severity  LowCardinality(String),
    state     LowCardinality(String) COMMENT 'open | update | resolved',
    ts        DateTime64(3, 'UTC') COMMENT 'event time of this message',
    started   DateTime64(3, 'UTC'),
    ended     Nullable(DateTime64(3, 'UTC')),
    value     Nullable(Float64),
    threshold Nullable(Float64),
    message   String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(started)
ORDER BY (lab, id, ts, state)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS deadletter
(
    id       String,
    ts       DateTime64(3, 'UTC') COMMENT 'when it was rejected',
    source   LowCardinality(String),
    stage    LowCardinality(String),
    reason   LowCardinality(String),
    detail   String,
    dev_eui  Nullable(String),
    original String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (stage, reason, id)
SETTINGS non_replicated_deduplication_window = 10000;
