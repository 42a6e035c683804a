-- Snowflake form of dxtrack/sql/duckdb/metric_percentiles.sql, over the last 30 days.
-- PERCENTILE_CONT is exact and interpolates, as DuckDB's quantile_cont does.
SELECT
    metric_name,
    COUNT(*) AS n,
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY value) AS p50,
    PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY value) AS p90,
    PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY value) AS p99,
    MIN(value) AS min_value,
    MAX(value) AS max_value
FROM metrics
WHERE dt >= DATEADD(DAY, -30, CURRENT_DATE()) AND value IS NOT NULL
GROUP BY metric_name
ORDER BY metric_name;
