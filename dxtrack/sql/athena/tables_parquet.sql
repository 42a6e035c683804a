-- The Glue tables of infra/dxtrack.yaml as Athena DDL, for Parquet delivery (OutputFormat
-- parquet: Firehose converts each record with these columns). Replace dxtrack_prod and the
-- bucket (dxtrack-<stage>-<account>-<region>).
CREATE DATABASE IF NOT EXISTS dxtrack_prod;

CREATE EXTERNAL TABLE IF NOT EXISTS dxtrack_prod.`error` (
    context string,
    stage string,
    run_id string,
    metadata string,
    `timestamp` double,
    exception struct<type:string,value:string,traceback:string,handled:boolean,mechanism:string>,
    fingerprint string,
    log struct<logger:string,level:string,message:string>,
    host string,
    producer_id string,
    seq bigint,
    sample_rate double,
    suppressed bigint,
    id string
)
PARTITIONED BY (dt string)
STORED AS PARQUET
LOCATION 's3://dxtrack-prod-123456789012-eu-west-1/error/'
TBLPROPERTIES (
    'classification' = 'parquet',
    'parquet.compression' = 'SNAPPY',
    'projection.enabled' = 'true',
    'projection.dt.type' = 'date',
    'projection.dt.format' = 'yyyy-MM-dd',
    'projection.dt.interval' = '1',
    'projection.dt.interval.unit' = 'DAYS',
    'projection.dt.range' = '2024-01-01,NOW',
    'storage.location.template' = 's3://dxtrack-prod-123456789012-eu-west-1/error/dt=${dt}/'
);

CREATE EXTERNAL TABLE IF NOT EXISTS dxtrack_prod.`metric` (
    context string,
    metric_name string,
    value double,
    stage string,
    metadata string,
    run_id string,
    `timestamp` double,
    host string,
    producer_id string,
    seq bigint,
    sample_rate double,
    id string
)
PARTITIONED BY (dt string)
STORED AS PARQUET
LOCATION 's3://dxtrack-prod-123456789012-eu-west-1/metric/'
TBLPROPERTIES (
    'classification' = 'parquet',
    'parquet.compression' = 'SNAPPY',
    'projection.enabled' = 'true',
    'projection.dt.type' = 'date',
    'projection.dt.format' = 'yyyy-MM-dd',
    'projection.dt.interval' = '1',
    'projection.dt.interval.unit' = 'DAYS',
    'projection.dt.range' = '2024-01-01,NOW',
    'storage.location.template' = 's3://dxtrack-prod-123456789012-eu-west-1/metric/dt=${dt}/'
);
