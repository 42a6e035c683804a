-- Per run id: its context, first and last record, errors (occurrences), metric records, how
-- many producers (processes) recorded, and how many records were lost on the way (holes in
-- seq, as in gaps.sql).
WITH error_records AS (
    SELECT DISTINCT ON (id) run_id, context, "timestamp", producer_id, seq,
        (1 + coalesce(suppressed, 0)) / coalesce(sample_rate, 1.0) AS occurrences
    FROM errors
),
metric_records AS (
    SELECT DISTINCT ON (id) run_id, context, "timestamp", producer_id, seq FROM metrics
),
records AS (
    SELECT run_id, context, "timestamp", producer_id, seq, occurrences AS errors, 0 AS metrics
    FROM error_records
    UNION ALL
    SELECT run_id, context, "timestamp", producer_id, seq, 0, 1 FROM metric_records
),
seqs AS (
    SELECT DISTINCT run_id, producer_id, seq FROM records WHERE seq IS NOT NULL
),
lost AS (
    SELECT run_id, sum(seq - previous - 1) AS lost FROM (
        SELECT run_id, seq,
            lag(seq, 1, 0) OVER (PARTITION BY producer_id ORDER BY seq) AS previous
        FROM seqs
    )
    WHERE seq - previous > 1
    GROUP BY run_id
)
SELECT
    records.run_id,
    list_sort(list(DISTINCT context)) AS contexts,
    min("timestamp") AS started,
    max("timestamp") AS ended,
    CAST(round(sum(errors)) AS BIGINT) AS errors,
    CAST(sum(metrics) AS BIGINT) AS metrics,
    count(DISTINCT producer_id) AS producers,
    coalesce(any_value(lost.lost), 0) AS lost
FROM records LEFT JOIN lost USING (run_id)
GROUP BY records.run_id
ORDER BY started DESC;
