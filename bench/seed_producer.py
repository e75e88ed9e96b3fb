"""A seed-style producer: Python boto3, one put_record call per reading, as the 2016 demo's
producer did (it called Firehose put_record once per record). The baseline for
bench/aws-vs-seed, against the same Kinesis endpoint as iotaa.

usage: seed_producer.py ENDPOINT STREAM COUNT [--batch]   (prints one line: readings/s)

With --batch it sends the same readings with put_records, 500 a call, to a stream of its own
(created, one shard): what a Python client gets from the same server at best, which shows when
the server, not the client, is the limit.
"""

import json
import random
import sys
import time
from datetime import datetime, timezone

import boto3

endpoint, stream, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
batch = "--batch" in sys.argv[4:]
kinesis = boto3.client(
    "kinesis",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="testing",
    aws_secret_access_key="testing",
)
devices = ["aaaa", "bbbb", "cccc", "dddd", "eeee"]
rng = random.Random(7)


def reading(i):
    device = devices[i % len(devices)]
    return device, {
        "deviceId": device,
        "sensorReading": rng.randint(-5, 5),
        "readingTimestamp": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
    }


if batch:
    stream = stream + "-batch"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream)
started = time.perf_counter()
if batch:
    for start in range(0, count, 500):
        records = []
        for i in range(start, min(start + 500, count)):
            device, r = reading(i)
            records.append({"Data": json.dumps(r) + "\n", "PartitionKey": device})
        kinesis.put_records(StreamName=stream, Records=records)
else:
    for i in range(count):
        device, r = reading(i)
        kinesis.put_record(StreamName=stream, Data=json.dumps(r) + "\n", PartitionKey=device)
elapsed = time.perf_counter() - started
calls = -(-count // 500) if batch else count
kind = "put_records" if batch else "put_record"
print(f"{count / elapsed:.0f} readings/s ({calls} {kind} calls in {elapsed:.1f} s)")
