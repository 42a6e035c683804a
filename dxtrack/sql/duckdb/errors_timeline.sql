-- Errors per time bucket ($every seconds: 86400 for days) and fingerprint, each id once.
SELECT
    floor("timestamp" / $every) * $every AS bucket,
    fingerprint,
    CAST(round(sum((1 + coalesce(suppressed, 0)) / coalesce(sample_rate, 1.0))) AS BIGINT) AS errors
FROM (SELECT DISTINCT ON (id) "timestamp", fingerprint, suppressed, sample_rate FROM errors)
GROUP BY ALL
ORDER BY bucket, errors DESC;
