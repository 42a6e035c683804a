-- Athena (Trino) form of duckdb/seq_gaps_per_day.sql, over the last 30 days. A producer's first
-- record in that window has nothing before it to compare with (its predecessors may lie before
-- the window), so holes before it are not counted.
WITH seqs AS (
    SELECT DISTINCT producer_id, seq, context, "timestamp" FROM (
        SELECT producer_id, seq, context, "timestamp" FROM dxtrack_prod."error"
        WHERE dt >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
        UNION ALL
        SELECT producer_id, seq, context, "timestamp" FROM dxtrack_prod."metric"
        WHERE dt >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
    )
),
ordered AS (
    SELECT *, lag(seq) OVER (PARTITION BY producer_id ORDER BY seq) AS previous FROM seqs
)
SELECT
    date(from_unixtime("timestamp")) AS day,
    context,
    producer_id,
    count(*) AS holes,
    sum(seq - previous - 1) AS missing
FROM ordered
WHERE previous IS NOT NULL AND seq - previous > 1
GROUP BY 1, 2, 3
ORDER BY day, context, producer_id;
