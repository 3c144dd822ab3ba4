-- How the tables the sink writes are merged. The sink inserts a few times a second (one
-- part per table per batch: latency is the point of the pipeline), while ClickHouse's
-- merge selector is tuned for about one insert a second: it counts every part as at least
-- 5 MB, so a range of a large part and a few new small ones looks balanced, and the
-- partition's largest part was merged again every few inserts. Over 600 inserts of 800
-- readings (`python -m bench.store_merges --inserts 600 --interval 0.1`) merges read each
-- inserted row ~10 times again and the process spent ~100-115 us of CPU per reading, two
-- thirds of it in background merges.
--
-- merge_selector_base = 20 (default 5) asks a merge to be about twentyfold wider than its
-- largest part, so a row is rewritten once per twentyfold growth of its part: the same
-- run takes ~52-55 us per reading, merges read each row ~2.6 times again, and inserts
-- are no slower. The price is more parts between merges (~20 instead of ~5 per
-- partition); ClickHouse itself lowers the base again as a partition nears 50 parts,
-- and FINAL (or argMax by version) already covers rows that merges have not yet
-- collapsed. A partition whose parts have all been idle for an hour (last month's, a
-- lab that went quiet) is merged into one part, as ClickHouse's ReplacingMergeTree
-- guide suggests for query speed.

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
