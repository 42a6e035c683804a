-- Athena (Trino) form of duckdb/errors_per_day_by_type.sql. Replace dxtrack_prod with
-- dxtrack_<stage>. The dt filter lets partition projection read only the days asked for.
WITH errors_once AS (
    SELECT *, row_number() OVER (PARTITION BY id ORDER BY dt) AS copy
    FROM dxtrack_prod."error"
    WHERE dt >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
)
SELECT
    date(from_unixtime("timestamp")) AS day,
    exception.type AS error_type,
    -- occurrences: a summary record stands for 1 + suppressed, a sampled one for 1 / sample_rate
    CAST(round(sum((1 + coalesce(suppressed, 0)) / coalesce(sample_rate, 1.0))) AS BIGINT) AS errors,
    count(DISTINCT run_id) AS runs
FROM errors_once
WHERE copy = 1
GROUP BY 1, 2
ORDER BY day, errors DESC, error_type;
