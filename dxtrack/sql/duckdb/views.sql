-- The two views the DuckDB queries read. Replace {error_files} and {metric_files} with globs of
-- dxtrack's JSON Lines: the stage-test files (.dxtrack_output/error.jsonl) or objects copied
-- from the bucket (aws s3 sync s3://<bucket>/error/ ./lake/error/, then './lake/error/**').
-- The columns are those of the Glue tables in infra/dxtrack.yaml; a test keeps both in step
-- with the package's JSON Schema.
CREATE OR REPLACE VIEW errors AS
SELECT * FROM read_json(
    {error_files},
    format = 'newline_delimited',
    compression = 'auto_detect',
    columns = {
        'context': 'VARCHAR',
        'stage': 'VARCHAR',
        'run_id': 'VARCHAR',
        'metadata': 'JSON',
        'timestamp': 'DOUBLE',
        'exception': 'STRUCT(type VARCHAR, value VARCHAR, traceback VARCHAR, handled BOOLEAN, mechanism VARCHAR)',
        'fingerprint': 'VARCHAR',
        'log': 'STRUCT(logger VARCHAR, level VARCHAR, message VARCHAR)',
        'host': 'VARCHAR',
        'producer_id': 'VARCHAR',
        'seq': 'BIGINT',
        'sample_rate': 'DOUBLE',
        'suppressed': 'BIGINT',
        'id': 'VARCHAR'
    }
);

CREATE OR REPLACE VIEW metrics AS
SELECT * FROM read_json(
    {metric_files},
    format = 'newline_delimited',
    compression = 'auto_detect',
    columns = {
        'context': 'VARCHAR',
        'metric_name': 'VARCHAR',
        'value': 'DOUBLE',
        'stage': 'VARCHAR',
        'metadata': 'JSON',
        'run_id': 'VARCHAR',
        'timestamp': 'DOUBLE',
        'host': 'VARCHAR',
        'producer_id': 'VARCHAR',
        'seq': 'BIGINT',
        'sample_rate': 'DOUBLE',
        'id': 'VARCHAR'
    }
);
