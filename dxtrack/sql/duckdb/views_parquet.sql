-- The views `errors` and `metrics` over Parquet objects (the template's OutputFormat parquet:
-- Firehose converted each record with the Glue table's columns). Replace {error_files} and
-- {metric_files} as in views.sql; every query of this directory then runs unchanged.
CREATE OR REPLACE VIEW errors AS
SELECT
    context, stage, run_id, CAST(metadata AS JSON) AS metadata, "timestamp", exception,
    fingerprint, log, host, producer_id, seq, sample_rate, suppressed, id
FROM read_parquet({error_files}, union_by_name = true);

CREATE OR REPLACE VIEW metrics AS
SELECT
    context, metric_name, value, stage, CAST(metadata AS JSON) AS metadata, run_id, "timestamp",
    host, producer_id, seq, sample_rate, id
FROM read_parquet({metric_files}, union_by_name = true);
