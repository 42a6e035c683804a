-- Holes in seq per producer: seq is 1, 2, 3... per producer_id across both record kinds, so a
-- missing number is a record lost on the way (a hole before the first record found included).
WITH seqs AS (
    SELECT DISTINCT producer_id, seq, run_id, context, host FROM (
        SELECT producer_id, seq, run_id, context, host FROM errors
        UNION ALL
        SELECT producer_id, seq, run_id, context, host FROM metrics
    )
    WHERE producer_id IS NOT NULL AND seq IS NOT NULL
),
ordered AS (
    SELECT *, lag(seq, 1, 0) OVER (PARTITION BY producer_id ORDER BY seq) AS previous FROM seqs
)
SELECT
    context, run_id, host, producer_id,
    previous + 1 AS first_missing,
    seq - 1 AS last_missing,
    seq - previous - 1 AS missing
FROM ordered
WHERE seq - previous > 1
ORDER BY context, run_id, producer_id, first_missing;
