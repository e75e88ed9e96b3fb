-- How many readings has each device sent? (the seed's second example)
-- Scans the whole lake (on Athena every object is billed; add a datehour filter for recent data).
SELECT deviceid, count(*) AS readings
FROM analyticsdemo.devicedata
GROUP BY deviceid
ORDER BY deviceid
