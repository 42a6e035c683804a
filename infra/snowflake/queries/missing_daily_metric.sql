-- Snowflake form of dxtrack/sql/duckdb/missing_daily_metric.sql, over the last 30 days: the days
-- on which products.downloaded did not arrive for a shop, from the shop's first record in the
-- window to the last day any shop reported. Replace the metric's name and the key.
WITH seen AS (
    SELECT DISTINCT
        metadata:shop::STRING AS shop,
        TO_DATE(TO_TIMESTAMP_NTZ(timestamp)) AS day
    FROM metrics
    WHERE dt >= DATEADD(DAY, -30, CURRENT_DATE())
        AND metric_name = 'products.downloaded'
        AND metadata:shop IS NOT NULL
),
firsts AS (
    SELECT shop, MIN(day) AS first_day FROM seen GROUP BY shop
),
last_day AS (
    SELECT MAX(day) AS last_day FROM seen
),
expected AS (
    SELECT firsts.shop, DATEADD(DAY, offsets.n, firsts.first_day) AS day
    FROM firsts
    CROSS JOIN last_day
    JOIN (SELECT ROW_NUMBER() OVER (ORDER BY SEQ4()) - 1 AS n FROM TABLE(GENERATOR(ROWCOUNT => 31))) AS offsets
        ON DATEADD(DAY, offsets.n, firsts.first_day) <= last_day.last_day
)
SELECT expected.day, expected.shop
FROM expected
LEFT JOIN seen ON seen.shop = expected.shop AND seen.day = expected.day
WHERE seen.shop IS NULL
ORDER BY expected.day, expected.shop;
