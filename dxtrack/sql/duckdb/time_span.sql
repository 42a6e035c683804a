-- The first and last timestamp over both kinds of record.
SELECT min(t) AS first, max(t) AS last FROM (
    SELECT "timestamp" AS t FROM errors UNION ALL SELECT "timestamp" FROM metrics
);
