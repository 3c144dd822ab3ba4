-- Event-time windows and the science of noise and air (streams/eventtime.py).
-- aggregates gets the validity, flags and statistical levels of each window; indices
-- holds the indicators (hourly LKI per unit, Lden family, O3 maximum daily 8-h mean);
-- lki_lab is the hourly LKI of a whole lab. Corrections carry a higher version:
-- query with FINAL or argMax(..., version).

ALTER TABLE aggregates
    ADD COLUMN IF NOT EXISTS valid UInt8 DEFAULT coverage >= 0.75
        COMMENT '1m, 1h: >= 75 % of expected samples, 8h: >= 6 valid hours, 24h and 1d: >= 18',
    ADD COLUMN IF NOT EXISTS flags UInt32 DEFAULT 0
        COMMENT 'OR of the readings quality flags (1 out of range, 2 humid PM), 4 not valid',
    ADD COLUMN IF NOT EXISTS valid_hours Nullable(UInt16)
        COMMENT 'valid hourly means behind the value of an 8h, 24h or 1d window',
    ADD COLUMN IF NOT EXISTS l10 Nullable(Float64)
        COMMENT 'laeq: level exceeded 10 % of the covered time (0.5 dB histogram)',
    ADD COLUMN IF NOT EXISTS l50 Nullable(Float64) COMMENT 'laeq: median level',
    ADD COLUMN IF NOT EXISTS l90 Nullable(Float64)
        COMMENT 'laeq: level exceeded 90 % of the covered time (background level)';

CREATE TABLE IF NOT EXISTS indices
(
    lab          LowCardinality(String),
    sensor       LowCardinality(String),
    indicator    LowCardinality(String)
        COMMENT 'lki, lki_pm25, lki_pm10, lki_no2, lki_o3 | lden, lday, levening, lnight | o3_max_8h',
    window       LowCardinality(String) COMMENT '1h | lden (07:00-07:00 local) | 1d (local day)',
    window_start DateTime64(3, 'UTC'),
    window_end   DateTime64(3, 'UTC'),
    value        Float64 COMMENT 'continuous LKI, dB, or ug/m3 (nan without data)',
    coverage     Float32 COMMENT 'share of what the indicator rests on that was measured',
    valid        UInt8,
    version      UInt32 COMMENT 'corrections carry a higher version'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (lab, sensor, indicator, window, window_start)
SETTINGS non_replicated_deduplication_window = 10000;

-- Hourly LKI of a lab: per pollutant the median over the lab's units with a valid hourly
-- value (medianExact takes a member, and the sub-index rises with the concentration, so
-- this is the sub-index of the median concentration; one drifting unit cannot move it),
-- then the total as for a unit: the highest sub-index, +1 (at most 11) when at least two
-- pollutants share one integer level.
CREATE VIEW IF NOT EXISTS lki_lab AS
SELECT
    lab,
    window_start,
    window_end,
    pollutants,
    subindices,
    units,
    least(
        arrayMax(subindices)
            + if(length(subindices) >= 2 AND arrayMin(levels) = arrayMax(levels), 1, 0),
        11
    ) AS lki
FROM
(
    SELECT
        lab,
        window_start,
        any(window_end) AS window_end,
        groupArray(pollutant) AS pollutants,
        groupArray(subindex) AS subindices,
        groupArray(n) AS units,
        arrayMap(x -> greatest(1, least(11, ceil(x))), subindices) AS levels
    FROM
    (
        SELECT lab, window_start, any(window_end) AS window_end,
               substring(indicator, 5) AS pollutant,
               medianExact(value) AS subindex, count() AS n
        FROM indices FINAL
        WHERE window = '1h' AND startsWith(indicator, 'lki_') AND valid
        GROUP BY lab, window_start, pollutant
        ORDER BY pollutant
    )
    GROUP BY lab, window_start
);
