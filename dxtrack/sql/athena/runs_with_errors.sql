-- Athena (Trino) form of duckdb/runs_with_errors.sql, over the last 30 days.
WITH errors_once AS (
    SELECT *, row_number() OVER (PARTITION BY id ORDER BY dt) AS copy
    FROM dxtrack_prod."error"
    WHERE dt >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
)
SELECT
    run_id,
    min(context) AS context,
    min("timestamp") AS first_error,
    max("timestamp") AS last_error,
    CAST(round(sum((1 + coalesce(suppressed, 0)) / coalesce(sample_rate, 1.0))) AS BIGINT) AS errors,
    count(DISTINCT fingerprint) AS fingerprints,
    max_by(exception.type, "timestamp") AS last_error_type
FROM errors_once
WHERE copy = 1
GROUP BY run_id
ORDER BY first_error DESC, run_id;
