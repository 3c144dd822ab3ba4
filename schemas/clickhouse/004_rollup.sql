-- A daily rollup per unit and quantity, filled on insert by a materialised view, so
-- analysts' day-level questions read thousands of rows instead of millions.
-- `frames` counts distinct uplinks (exact even when a batch is replayed after a
-- crash); mean/min/max are taken over the inserted rows: min and max are unaffected
-- by replays, a mean may carry a replayed row until the source table merges. For
-- audited figures use readings FINAL.
CREATE TABLE IF NOT EXISTS readings_daily
(
    lab      LowCardinality(String),
    sensor   LowCardinality(String),
    quantity LowCardinality(String),
    day      Date COMMENT 'UTC day',
    frames   AggregateFunction(uniqExact, UInt32, UInt32),
    mean     AggregateFunction(avg, Float64),
    low      AggregateFunction(min, Float64),
    high     AggregateFunction(max, Float64)
)
ENGINE = AggregatingMergeTree
ORDER BY (lab, sensor, quantity, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS readings_daily_mv TO readings_daily AS
SELECT
    lab,
    sensor,
    quantity,
    toDate(ts) AS day,
    uniqExactState(session, f_cnt) AS frames,
    avgState(value) AS mean,
    minState(value) AS low,
    maxState(value) AS high
FROM readings
GROUP BY lab, sensor, quantity, day;
