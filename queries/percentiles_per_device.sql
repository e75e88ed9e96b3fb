-- What are each device's median and 99th-percentile readings (approximate, as Athena computes them)?
-- Scans the whole lake (on Athena every object is billed; add a datehour filter for recent data).
SELECT deviceid,
       approx_percentile(sensorreading, 0.5) AS p50,
       approx_percentile(sensorreading, 0.99) AS p99,
       count(*) AS readings
FROM analyticsdemo.devicedata
GROUP BY deviceid
ORDER BY deviceid
