-- Athena (Trino) form of duckdb/missing_daily_metric.sql, over the last 30 days: each shop is
-- expected every day from its first record in the window to the last day any shop reported.
WITH seen AS (
    SELECT DISTINCT
        json_extract_scalar(metadata, '$.shop') AS shop,
        date(from_unixtime("timestamp")) AS day
    FROM dxtrack_prod."metric"
    WHERE dt >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
        AND metric_name = 'products.downloaded'
        AND json_extract_scalar(metadata, '$.shop') IS NOT NULL
),
firsts AS (
    SELECT shop, min(day) AS first_day FROM seen GROUP BY shop
),
expected AS (
    SELECT firsts.shop, expected_day AS day
    FROM firsts
    CROSS JOIN (SELECT max(day) AS last_day FROM seen) AS last
    CROSS JOIN UNNEST(sequence(firsts.first_day, last.last_day, INTERVAL '1' DAY)) AS t (expected_day)
)
SELECT expected.day, expected.shop
FROM expected
LEFT JOIN seen ON seen.shop = expected.shop AND seen.day = expected.day
WHERE seen.shop IS NULL
ORDER BY expected.day, expected.shop;
