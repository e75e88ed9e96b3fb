-- Which devices sent the most out-of-range readings?
-- Scans the whole lake (on Athena every object is billed; add a datehour filter for recent data).
SELECT deviceid,
       count(*) AS out_of_range,
       max(abs(sensorreading)) AS largest
FROM analyticsdemo.devicedata
WHERE sensorreading NOT BETWEEN -5 AND 5
GROUP BY deviceid
ORDER BY out_of_range DESC, deviceid
LIMIT 10
