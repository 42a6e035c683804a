-- Completeness: holes in seq per producer and day (UTC), each a run of records lost on the way.
-- A hole is counted on the day of the record that follows it; a hole before a producer's first
-- record found counts too.
WITH seqs AS (
    SELECT DISTINCT producer_id, seq, context, "timestamp" FROM (
        SELECT producer_id, seq, context, "timestamp" FROM errors
        UNION ALL
        SELECT producer_id, seq, context, "timestamp" FROM metrics
    )
),
ordered AS (
    SELECT *, lag(seq, 1, 0) OVER (PARTITION BY producer_id ORDER BY seq) AS previous FROM seqs
)
SELECT
    CAST(make_timestamp(CAST("timestamp" * 1e6 AS BIGINT)) AS DATE) AS day,
    context,
    producer_id,
    count(*) AS holes,
    sum(seq - previous - 1) AS missing
FROM ordered
WHERE seq - previous > 1
GROUP BY ALL
ORDER BY day, context, producer_id;
