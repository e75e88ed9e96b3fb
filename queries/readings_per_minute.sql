-- How many readings arrived each minute, and how many of them were out of range?
-- Scans the whole lake (on Athena every object is billed; add a datehour filter for recent data).
SELECT date_trunc('minute', readingtimestamp) AS minute,
       count(*) AS readings,
       sum(CASE WHEN sensorreading NOT BETWEEN -5 AND 5 THEN 1 ELSE 0 END) AS out_of_range
FROM analyticsdemo.devicedata
GROUP BY date_trunc('minute', readingtimestamp)
ORDER BY minute
