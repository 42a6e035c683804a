-- Snowflake form of dxtrack/sql/duckdb/seq_gaps_per_day.sql, over the last 30 days: holes in
-- seq per producer and day. As in Athena's form, holes before a producer's first record in the
-- window are not counted (its predecessors may lie before the window).
WITH seqs AS (
    SELECT DISTINCT producer_id, seq, context, timestamp FROM (
        SELECT producer_id, seq, context, timestamp FROM errors
        WHERE dt >= DATEADD(DAY, -30, CURRENT_DATE())
        UNION ALL
        SELECT producer_id, seq, context, timestamp FROM metrics
        WHERE dt >= DATEADD(DAY, -30, CURRENT_DATE())
    )
),
ordered AS (
    SELECT *, LAG(seq) OVER (PARTITION BY producer_id ORDER BY seq) AS previous FROM seqs
)
SELECT
    TO_DATE(TO_TIMESTAMP_NTZ(timestamp)) AS day,
    context,
    producer_id,
    COUNT(*) AS holes,
    SUM(seq - previous - 1) AS missing
FROM ordered
WHERE previous IS NOT NULL AND seq - previous > 1
GROUP BY 1, 2, 3
ORDER BY day, context, producer_id;
