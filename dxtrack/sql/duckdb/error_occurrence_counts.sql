-- Occurrences per fingerprint counting each record id once, for the groups given as $fingerprints.
SELECT fingerprint, sum((1 + coalesce(suppressed, 0)) / coalesce(sample_rate, 1.0)) AS occurrences
FROM (
    SELECT fingerprint, suppressed, sample_rate FROM errors
    WHERE list_contains($fingerprints, fingerprint)
    QUALIFY row_number() OVER (PARTITION BY id) = 1
)
GROUP BY fingerprint;
