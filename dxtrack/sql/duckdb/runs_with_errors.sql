-- Completeness: the runs that produced errors, newest first, with how many (occurrences), how
-- many distinct errors (fingerprints) and the type of the last one.
WITH errors_once AS (
    SELECT * FROM errors QUALIFY row_number() OVER (PARTITION BY id) = 1
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
GROUP BY run_id
ORDER BY first_error DESC, run_id;
