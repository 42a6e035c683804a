-- Completeness: the days on which an expected daily metric did not arrive, per shop. Here the
-- metric products.downloaded with the metadata key shop: replace both for your own. Each shop
-- is expected every day from its first record to the last day any shop reported.
WITH seen AS (
    SELECT DISTINCT
        metadata->>'shop' AS shop,
        CAST(make_timestamp(CAST("timestamp" * 1e6 AS BIGINT)) AS DATE) AS day
    FROM metrics
    WHERE metric_name = 'products.downloaded' AND metadata->>'shop' IS NOT NULL
),
expected AS (
    SELECT shop, CAST(unnest(generate_series(first_day, last_day, INTERVAL 1 DAY)) AS DATE) AS day
    FROM (SELECT shop, min(day) AS first_day FROM seen GROUP BY shop)
    CROSS JOIN (SELECT max(day) AS last_day FROM seen)
)
SELECT expected.day, expected.shop
FROM expected LEFT JOIN seen USING (shop, day)
WHERE seen.shop IS NULL
ORDER BY expected.day, expected.shop;
