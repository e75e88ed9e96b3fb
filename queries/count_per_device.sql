-- How many readings has each device sent? (the seed's second example)
SELECT deviceid, count(*) AS readings
FROM analyticsdemo.devicedata
GROUP BY deviceid
ORDER BY deviceid
