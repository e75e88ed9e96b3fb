#!/usr/bin/env python3
"""Times `iotaa query` as a whole process on a generated lake, for one or more binaries, so
that builds can be compared in one run (README "Build time").

    bench/query-times.py BINARY [BINARY ...] [--readings N] [--runs N]

The lake: N readings (default 1,000,000, seeded) of the seed's five devices, 20 ms apart, in
gzip NDJSON objects of 50,000 readings in Firehose's key layout, in a temporary data dir.
Each query runs once to warm the cache, then --runs times per binary, interleaved; the median,
min and max wall time are printed. Exits 1 if a query fails."""
import argparse, datetime, gzip, os, random, statistics, subprocess, sys, tempfile, time

QUERIES = {
    "readings per device": "SELECT deviceid, count(*) AS n FROM devicedata GROUP BY deviceid ORDER BY deviceid",
    "stats per device": "SELECT deviceid, count(*), avg(sensorreading), min(sensorreading), max(sensorreading), approx_percentile(sensorreading, 0.99) FROM devicedata GROUP BY deviceid ORDER BY deviceid",
    "hourly, filtered": "SELECT date_trunc('hour', readingtimestamp) AS h, count(*) FROM devicedata WHERE sensorreading > 3 GROUP BY 1 ORDER BY 1",
}


def make_lake(root, readings, per_object=50_000):
    rng = random.Random(7)
    devices = ["aaaa", "bbbb", "cccc", "dddd", "eeee"]
    base = datetime.datetime(2026, 12, 1)
    for o in range(max(1, readings // per_object)):
        t0 = base + datetime.timedelta(seconds=o * per_object // 50)
        folder = os.path.join(root, "data", "lake", t0.strftime("%Y/%m/%d/%H"))
        os.makedirs(folder, exist_ok=True)
        lines = []
        for i in range(per_object):
            t = t0 + datetime.timedelta(milliseconds=i * 20)
            stamp = t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (t.microsecond // 1000)
            lines.append('{"deviceId":"%s","sensorReading":%d,"readingTimestamp":"%s"}\n'
                         % (devices[i % 5], rng.randint(-5, 5), stamp))
        name = f"devicedata-1-{t0:%Y-%m-%d-%H-%M-%S}-{o:04d}.gz"
        with gzip.open(os.path.join(folder, name), "wt", compresslevel=6) as f:
            f.writelines(lines)
    with open(os.path.join(root, "config.toml"), "w") as f:
        f.write('data_dir = "data"\n')


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binaries", nargs="+")
    p.add_argument("--readings", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    a.binaries = [os.path.abspath(b) for b in a.binaries]
    with tempfile.TemporaryDirectory() as root:
        make_lake(root, a.readings)
        times = {}
        for name, sql in QUERIES.items():
            for run in range(a.runs + 1):
                for b in a.binaries:
                    t = time.perf_counter()
                    out = subprocess.run([b, "--config", "config.toml", "query", sql],
                                         cwd=root, capture_output=True, text=True)
                    dt = time.perf_counter() - t
                    if out.returncode != 0:
                        sys.exit(f"{b}: {name}: {out.stderr.strip()}")
                    if run > 0:
                        times.setdefault((name, b), []).append(dt)
        print(f"query-times: {a.readings} readings, median of {a.runs} runs each")
        for (name, b), v in times.items():
            print(f"  {name:20} {b:40} {statistics.median(v):.3f} s (min {min(v):.3f}, max {max(v):.3f})")


if __name__ == "__main__":
    main()
