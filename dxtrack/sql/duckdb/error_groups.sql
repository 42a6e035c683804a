-- Errors grouped by fingerprint (the same error from the same code path), most frequent first.
-- One pass over the files: `records` against `distinct_records` tells whether at-least-once
-- delivery left copies of a record (same id) in a group, whose count the caller then takes
-- again from error_occurrence_counts.sql. Hashing the ids makes that test cheaper; a collision
-- can only send a group to the exact count, never hide a copy.
SELECT
    fingerprint,
    arg_max(exception.type, "timestamp") AS type,
    arg_max(exception.value, "timestamp") AS message,
    arg_max(exception.traceback, "timestamp") AS traceback,
    arg_max(exception.mechanism, "timestamp") AS mechanism,
    bool_or(NOT exception.handled) AS unhandled,
    -- occurrences: a summary record stands for 1 + suppressed, a sampled one for 1 / sample_rate
    sum((1 + coalesce(suppressed, 0)) / coalesce(sample_rate, 1.0)) AS occurrences,
    count(*) AS records,
    count(DISTINCT hash(id)) AS distinct_records,
    min("timestamp") AS first_seen,
    max("timestamp") AS last_seen,
    list_sort(list(DISTINCT context)) AS contexts,
    count(DISTINCT run_id) AS runs
FROM errors
WHERE fingerprint IS NOT NULL
GROUP BY fingerprint
ORDER BY occurrences DESC, last_seen DESC, fingerprint;
