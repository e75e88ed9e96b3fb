-- Which readings fell outside the normal range -5..5? (the seed's first example)
-- Scans the whole lake (on Athena every object is billed; add a datehour filter for recent data).
SELECT deviceid, sensorreading, readingtimestamp
FROM analyticsdemo.devicedata
WHERE sensorreading < -5 OR sensorreading > 5
ORDER BY readingtimestamp, deviceid, sensorreading
