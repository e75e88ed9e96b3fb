-- How many readings landed in each hour folder of the last 24 hours? Lists only those folders (datehour pruning).
SELECT datehour,
       count(*) AS readings,
       date_format(min(readingtimestamp), '%Y-%m-%d %H:%i:%s') AS first_reading,
       date_format(max(readingtimestamp), '%Y-%m-%d %H:%i:%s') AS last_reading
FROM analyticsdemo.devicedata
WHERE datehour >= date_format(current_timestamp - interval '24' hour, '%Y/%m/%d/%H')
GROUP BY datehour
ORDER BY datehour
