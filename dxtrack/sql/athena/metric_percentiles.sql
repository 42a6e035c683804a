-- Athena (Trino) form of duckdb/metric_percentiles.sql. approx_percentile is approximate
-- (a t-digest); DuckDB's quantile_cont is exact and interpolates.
WITH metrics_once AS (
    SELECT *, row_number() OVER (PARTITION BY id ORDER BY dt) AS copy
    FROM dxtrack_prod."metric"
    WHERE dt >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
)
SELECT
    metric_name,
    count(*) AS n,
    approx_percentile(value, 0.5) AS p50,
    approx_percentile(value, 0.9) AS p90,
    approx_percentile(value, 0.99) AS p99,
    min(value) AS min_value,
    max(value) AS max_value
FROM metrics_once
WHERE copy = 1 AND value IS NOT NULL
GROUP BY metric_name
ORDER BY metric_name;
