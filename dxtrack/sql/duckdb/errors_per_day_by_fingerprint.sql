-- Errors per day (UTC) and fingerprint: the same error from the same code path, across runs.
WITH errors_once AS (
    SELECT * FROM errors QUALIFY row_number() OVER (PARTITION BY id) = 1
)
SELECT
    CAST(make_timestamp(CAST("timestamp" * 1e6 AS BIGINT)) AS DATE) AS day,
    fingerprint,
    min(exception.type) AS error_type,
    min(exception.value) AS example_value,
    -- occurrences: a summary record stands for 1 + suppressed, a sampled one for 1 / sample_rate
    CAST(round(sum((1 + coalesce(suppressed, 0)) / coalesce(sample_rate, 1.0))) AS BIGINT) AS errors
FROM errors_once
GROUP BY day, fingerprint
ORDER BY day, errors DESC, fingerprint;
