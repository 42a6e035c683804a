-- Snowflake form of dxtrack/sql/duckdb/errors_per_day_by_fingerprint.sql, over the last 30 days.
SELECT
    TO_DATE(TO_TIMESTAMP_NTZ(timestamp)) AS day,
    fingerprint,
    MIN(exception:type::STRING) AS error_type,
    MIN(exception:value::STRING) AS example_value,
    -- occurrences: a summary record stands for 1 + suppressed, a sampled one for 1 / sample_rate
    ROUND(SUM((1 + COALESCE(suppressed, 0)) / COALESCE(sample_rate, 1.0)))::NUMBER AS errors
FROM errors
WHERE dt >= DATEADD(DAY, -30, CURRENT_DATE())
GROUP BY 1, 2
ORDER BY day, errors DESC, fingerprint;
