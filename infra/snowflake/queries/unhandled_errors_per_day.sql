-- Snowflake form of dxtrack/sql/duckdb/unhandled_errors_per_day.sql, over the last 30 days.
SELECT
    TO_DATE(TO_TIMESTAMP_NTZ(timestamp)) AS day,
    exception:handled::BOOLEAN AS handled,
    exception:mechanism::STRING AS mechanism,
    ROUND(SUM((1 + COALESCE(suppressed, 0)) / COALESCE(sample_rate, 1.0)))::NUMBER AS errors,
    COUNT(DISTINCT run_id) AS runs
FROM errors
WHERE dt >= DATEADD(DAY, -30, CURRENT_DATE())
GROUP BY 1, 2, 3
ORDER BY day, handled, errors DESC, mechanism;
