-- Count and percentiles of each metric, each record once; NaN/infinite values (null) left out.
WITH metrics_once AS (
    SELECT * FROM metrics QUALIFY row_number() OVER (PARTITION BY id) = 1
)
SELECT
    metric_name,
    count(*) AS n,
    quantile_cont(value, 0.5) AS p50,
    quantile_cont(value, 0.9) AS p90,
    quantile_cont(value, 0.99) AS p99,
    min(value) AS min_value,
    max(value) AS max_value
FROM metrics_once
WHERE value IS NOT NULL
GROUP BY metric_name
ORDER BY metric_name;
