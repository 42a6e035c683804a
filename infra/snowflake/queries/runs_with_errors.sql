-- Snowflake form of dxtrack/sql/duckdb/runs_with_errors.sql, over the last 30 days.
SELECT
    run_id,
    MIN(context) AS context,
    MIN(timestamp) AS first_error,
    MAX(timestamp) AS last_error,
    ROUND(SUM((1 + COALESCE(suppressed, 0)) / COALESCE(sample_rate, 1.0)))::NUMBER AS errors,
    COUNT(DISTINCT fingerprint) AS fingerprints,
    MAX_BY(exception:type::STRING, timestamp) AS last_error_type
FROM errors
WHERE dt >= DATEADD(DAY, -30, CURRENT_DATE())
GROUP BY run_id
ORDER BY first_error DESC, run_id;
