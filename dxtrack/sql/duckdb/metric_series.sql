-- Per metric name and time bucket ($every seconds): count, p50, p95 and max, each id once.
SELECT
    metric_name,
    floor("timestamp" / $every) * $every AS bucket,
    count(*) AS records,
    quantile_cont(value, 0.5) AS p50,
    quantile_cont(value, 0.95) AS p95,
    max(value) AS max
FROM (SELECT DISTINCT ON (id) metric_name, "timestamp", value FROM metrics)
GROUP BY ALL
ORDER BY metric_name, bucket;
