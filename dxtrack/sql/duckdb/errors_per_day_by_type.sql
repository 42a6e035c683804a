-- Errors per day (UTC) and exception type, each record once (delivery is at least once).
WITH errors_once AS (
    SELECT * FROM errors QUALIFY row_number() OVER (PARTITION BY id) = 1
)
SELECT
    CAST(make_timestamp(CAST("timestamp" * 1e6 AS BIGINT)) AS DATE) AS day,
    exception.type AS error_type,
    -- occurrences: a summary record stands for 1 + suppressed, a sampled one for 1 / sample_rate
    CAST(round(sum((1 + coalesce(suppressed, 0)) / coalesce(sample_rate, 1.0))) AS BIGINT) AS errors,
    count(DISTINCT run_id) AS runs
FROM errors_once
GROUP BY day, error_type
ORDER BY day, errors DESC, error_type;
