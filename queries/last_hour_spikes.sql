-- Which spikes (readings outside -5..5) happened in the last hour? Lists only the recent hour folders.
SELECT readingtimestamp, deviceid, sensorreading
FROM analyticsdemo.devicedata
WHERE datehour >= date_format(current_timestamp - interval '2' hour, '%Y/%m/%d/%H')
  AND readingtimestamp > current_timestamp - interval '1' hour
  AND (sensorreading < -5 OR sensorreading > 5)
ORDER BY readingtimestamp DESC, deviceid
