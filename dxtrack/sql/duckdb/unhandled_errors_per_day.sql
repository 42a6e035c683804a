-- Errors per day (UTC) by how they were captured: handled or not, and the mechanism (error,
-- errors, excepthook, threading, asyncio, logging, lambda, decorator), each record once.
WITH errors_once AS (
    SELECT * FROM errors QUALIFY row_number() OVER (PARTITION BY id) = 1
)
SELECT
    CAST(make_timestamp(CAST("timestamp" * 1e6 AS BIGINT)) AS DATE) AS day,
    exception.handled AS handled,
    exception.mechanism AS mechanism,
    -- occurrences: a summary record stands for 1 + suppressed, a sampled one for 1 / sample_rate
    CAST(round(sum((1 + coalesce(suppressed, 0)) / coalesce(sample_rate, 1.0))) AS BIGINT) AS errors,
    count(DISTINCT run_id) AS runs
FROM errors_once
GROUP BY day, handled, mechanism
ORDER BY day, handled, errors DESC, mechanism;
