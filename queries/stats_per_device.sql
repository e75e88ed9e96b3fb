-- What are each device's highest, lowest and average readings? (the seed's third example)
-- Scans the whole lake (on Athena every object is billed; add a datehour filter for recent data).
SELECT deviceid,
       max(sensorreading) AS max_reading,
       min(sensorreading) AS min_reading,
       avg(sensorreading) AS avg_reading
FROM analyticsdemo.devicedata
GROUP BY deviceid
ORDER BY deviceid
