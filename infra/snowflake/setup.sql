-- dxtrack's records in Snowflake: dxtrack_<stage>.public.error_1 and metric_1, loaded from the
-- S3 bucket of infra/dxtrack.yaml by Snowpipe auto-ingest, and the views errors and metrics
-- (each record once) that the queries in queries/ read. See README.md for the order of the
-- steps and the AWS side. Replace, everywhere: prod (the stage), the bucket
-- dxtrack-prod-123456789012-eu-west-1 and the role ARN.

CREATE DATABASE IF NOT EXISTS dxtrack_prod;
USE SCHEMA dxtrack_prod.public;

-- Needs ACCOUNTADMIN (or CREATE INTEGRATION). DESC INTEGRATION dxtrack_prod_s3 then gives the
-- STORAGE_AWS_IAM_USER_ARN and STORAGE_AWS_EXTERNAL_ID for the role's trust policy.
CREATE STORAGE INTEGRATION IF NOT EXISTS dxtrack_prod_s3
    TYPE = EXTERNAL_STAGE
    STORAGE_PROVIDER = 'S3'
    ENABLED = TRUE
    STORAGE_AWS_ROLE_ARN = 'arn:aws:iam::123456789012:role/dxtrack-snowflake-prod'
    STORAGE_ALLOWED_LOCATIONS = (
        's3://dxtrack-prod-123456789012-eu-west-1/error/',
        's3://dxtrack-prod-123456789012-eu-west-1/metric/'
    );

-- COMPRESSION = AUTO reads what every ProducerCompression gives: gzip (the stream's own GZIP,
-- or the producer's) and zstd (.json.zst), each object a concatenation of members or frames.
CREATE FILE FORMAT IF NOT EXISTS dxtrack_json
    TYPE = JSON
    COMPRESSION = AUTO
    STRIP_OUTER_ARRAY = FALSE
    IGNORE_UTF8_ERRORS = FALSE;

CREATE STAGE IF NOT EXISTS dxtrack_error_stage
    URL = 's3://dxtrack-prod-123456789012-eu-west-1/error/'
    STORAGE_INTEGRATION = dxtrack_prod_s3
    FILE_FORMAT = dxtrack_json;

CREATE STAGE IF NOT EXISTS dxtrack_metric_stage
    URL = 's3://dxtrack-prod-123456789012-eu-west-1/metric/'
    STORAGE_INTEGRATION = dxtrack_prod_s3
    FILE_FORMAT = dxtrack_json;

-- One row per error record as delivered: the record's fields as typed columns (nested objects
-- as OBJECT), the whole record as raw, the dt of its object's prefix, and where and when it
-- was loaded. Firehose delivers at least once: the view errors keeps each id once.
CREATE TABLE IF NOT EXISTS error_1 (
    context     STRING,
    stage       STRING,
    run_id      STRING,
    metadata    OBJECT,
    timestamp   FLOAT,
    host        STRING,
    producer_id STRING,
    seq         NUMBER(38, 0),
    sample_rate FLOAT,
    suppressed  NUMBER(38, 0),
    id          STRING,
    exception   OBJECT,
    fingerprint STRING,
    log         OBJECT,
    raw         VARIANT,
    dt          DATE,
    file_name   STRING,
    loaded_at   TIMESTAMP_LTZ
);

-- Needs the bucket's event notification to the pipe's queue (SHOW PIPES: notification_channel).
CREATE PIPE IF NOT EXISTS error_1_pipe
    AUTO_INGEST = TRUE
    AS
    COPY INTO error_1 (context, stage, run_id, metadata, timestamp, host, producer_id, seq, sample_rate, suppressed, id, exception, fingerprint, log, raw, dt, file_name, loaded_at)
    FROM (
        SELECT
        $1:context::STRING,
        $1:stage::STRING,
        $1:run_id::STRING,
        $1:metadata::OBJECT,
        $1:timestamp::FLOAT,
        $1:host::STRING,
        $1:producer_id::STRING,
        $1:seq::NUMBER(38, 0),
        $1:sample_rate::FLOAT,
        $1:suppressed::NUMBER(38, 0),
        $1:id::STRING,
        $1:exception::OBJECT,
        $1:fingerprint::STRING,
        $1:log::OBJECT,
        $1,
        TO_DATE(REGEXP_SUBSTR(METADATA$FILENAME, 'dt=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1, 1, 'e')),
        METADATA$FILENAME,
        CURRENT_TIMESTAMP()
        FROM @dxtrack_error_stage
    )
    FILE_FORMAT = (FORMAT_NAME = 'dxtrack_json')
    ON_ERROR = 'SKIP_FILE';

CREATE OR REPLACE VIEW errors AS
SELECT * FROM error_1
QUALIFY ROW_NUMBER() OVER (PARTITION BY id ORDER BY loaded_at) = 1;

-- One row per metric record as delivered: the record's fields as typed columns (nested objects
-- as OBJECT), the whole record as raw, the dt of its object's prefix, and where and when it
-- was loaded. Firehose delivers at least once: the view metrics keeps each id once.
CREATE TABLE IF NOT EXISTS metric_1 (
    context     STRING,
    stage       STRING,
    run_id      STRING,
    metadata    OBJECT,
    timestamp   FLOAT,
    host        STRING,
    producer_id STRING,
    seq         NUMBER(38, 0),
    sample_rate FLOAT,
    id          STRING,
    metric_name STRING,
    value       FLOAT,
    raw         VARIANT,
    dt          DATE,
    file_name   STRING,
    loaded_at   TIMESTAMP_LTZ
);

-- Needs the bucket's event notification to the pipe's queue (SHOW PIPES: notification_channel).
CREATE PIPE IF NOT EXISTS metric_1_pipe
    AUTO_INGEST = TRUE
    AS
    COPY INTO metric_1 (context, stage, run_id, metadata, timestamp, host, producer_id, seq, sample_rate, id, metric_name, value, raw, dt, file_name, loaded_at)
    FROM (
        SELECT
        $1:context::STRING,
        $1:stage::STRING,
        $1:run_id::STRING,
        $1:metadata::OBJECT,
        $1:timestamp::FLOAT,
        $1:host::STRING,
        $1:producer_id::STRING,
        $1:seq::NUMBER(38, 0),
        $1:sample_rate::FLOAT,
        $1:id::STRING,
        $1:metric_name::STRING,
        $1:value::FLOAT,
        $1,
        TO_DATE(REGEXP_SUBSTR(METADATA$FILENAME, 'dt=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1, 1, 'e')),
        METADATA$FILENAME,
        CURRENT_TIMESTAMP()
        FROM @dxtrack_metric_stage
    )
    FILE_FORMAT = (FORMAT_NAME = 'dxtrack_json')
    ON_ERROR = 'SKIP_FILE';

CREATE OR REPLACE VIEW metrics AS
SELECT * FROM metric_1
QUALIFY ROW_NUMBER() OVER (PARTITION BY id ORDER BY loaded_at) = 1;
