-- Per metric name, split by {split} (a metadata key, a time bucket, or nothing): how many
-- records, the smallest, median, 95th percentile, largest and latest value. Each id once.
WITH once AS (
    SELECT * FROM metrics QUALIFY row_number() OVER (PARTITION BY id) = 1
)
SELECT
    metric_name,
    {split} AS split,
    count(*) AS records,
    min(value) AS min,
    quantile_cont(value, 0.5) AS p50,
    quantile_cont(value, 0.95) AS p95,
    max(value) AS max,
    arg_max(value, "timestamp") AS last,
    max("timestamp") AS last_seen
FROM once
GROUP BY ALL
ORDER BY metric_name, split NULLS FIRST;
