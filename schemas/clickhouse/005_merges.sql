-- How the tables the sink writes are merged. The sink inserts a few times a second (one
-- part per table per batch: latency is the point of the pipeline), while ClickHouse's
-- merge selector is tuned for about one insert a second: it counts every part as at least
-- 5 MB, so a range of a large part and a few new small ones looks balanced, and the
-- partition's largest part was merged again every few inserts. Over 600 inserts of 800
-- readings (`python -m bench.store_merges --inserts 600 --interval 0.1`) each readings
-- row was written ~6 times, the readings_daily states ~60 times, and the process spent
-- ~115 us of CPU per reading, two thirds of it in background merges.
--
-- merge_selector_base = 20 (default 5) asks a merge to be about twentyfold wider than its
-- largest part: a row is rewritten once per twentyfold growth of its part, and the same
-- run takes ~52 us per reading (insert p50/p99 23/50 ms against 31/78). The price is more
-- parts between merges (~20 instead of ~5 per partition); ClickHouse itself lowers the
-- base again as a partition nears 50 parts, and FINAL (or argMax by version) already
-- covers rows that merges have not yet collapsed. A partition whose parts have all been
-- idle for an hour (last month's, a lab that went quiet) is merged into one part, as
-- ClickHouse's ReplacingMergeTree guide suggests for query speed.

ALTER TABLE readings MODIFY SETTING
    merge_selector_base = 20, min_age_to_force_merge_seconds = 3600,
    min_age_to_force_merge_on_partition_only = 1;

ALTER TABLE uplinks MODIFY SETTING
    merge_selector_base = 20, min_age_to_force_merge_seconds = 3600,
    min_age_to_force_merge_on_partition_only = 1;

ALTER TABLE readings_daily MODIFY SETTING
    merge_selector_base = 20, min_age_to_force_merge_seconds = 3600,
    min_age_to_force_merge_on_partition_only = 1;

ALTER TABLE aggregates MODIFY SETTING
    merge_selector_base = 20, min_age_to_force_merge_seconds = 3600,
    min_age_to_force_merge_on_partition_only = 1;

ALTER TABLE indices MODIFY SETTING
    merge_selector_base = 20, min_age_to_force_merge_seconds = 3600,
    min_age_to_force_merge_on_partition_only = 1;

ALTER TABLE alerts MODIFY SETTING
    merge_selector_base = 20, min_age_to_force_merge_seconds = 3600,
    min_age_to_force_merge_on_partition_only = 1;

ALTER TABLE deadletter MODIFY SETTING
    merge_selector_base = 20, min_age_to_force_merge_seconds = 3600,
    min_age_to_force_merge_on_partition_only = 1;
