-- The Athena table over the lake: Firehose's YYYY/MM/DD/HH/ layout, JSON lines, partition projection on datehour.
-- This is Athena DDL: the AWS stack creates the same table (a Glue table with these properties);
-- the embedded engine registers its own equivalent and never runs this file.
-- Placeholders: replace <bucket> (and add the delivery prefix, if any, before ${datehour}).
-- The range start is the first hour the lake can hold; NOW keeps the projection current.
CREATE EXTERNAL TABLE IF NOT EXISTS analyticsdemo.devicedata (
  deviceid         string,
  sensorreading    smallint,
  readingtimestamp timestamp
)
PARTITIONED BY (datehour string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
LOCATION 's3://<bucket>/'
TBLPROPERTIES (
  'projection.enabled'                = 'true',
  'projection.datehour.type'          = 'date',
  'projection.datehour.format'        = 'yyyy/MM/dd/HH',
  'projection.datehour.range'         = '2026/11/30/00,NOW',
  'projection.datehour.interval'      = '1',
  'projection.datehour.interval.unit' = 'HOURS',
  'storage.location.template'         = 's3://<bucket>/${datehour}/'
);
