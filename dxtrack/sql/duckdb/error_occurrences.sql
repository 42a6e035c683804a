-- The records of one fingerprint, newest first, each id once.
SELECT DISTINCT ON ("timestamp", id)
    "timestamp", context, run_id, host, producer_id, seq, metadata,
    exception.type AS type, exception.value AS message, exception.traceback AS traceback,
    exception.mechanism AS mechanism, exception.handled AS handled,
    1 + coalesce(suppressed, 0) AS occurrences, sample_rate, log.message AS log_message, id
FROM errors
WHERE fingerprint = $fingerprint
ORDER BY "timestamp" DESC, id
LIMIT $limit;
