#!/usr/bin/env python3
"""Gzip JSON lake vs Parquet lake, iotaa vs DuckDB, in one run (issue 14, item 4).

    bench/lake-bench.py BINARY [--readings N [N ...]] [--runs N] [--queries NAME ...]

For each --readings N (default 1,000,000 and 10,000,000): a seeded lake of N readings of the
seed's five devices, 20 ms apart, in gzip NDJSON objects of 50,000 readings in Firehose's key
layout (as bench/query-times.py writes it, plus about ten spikes of ±400..500 an object so that
the out-of-range queries return rows), placed so that the newest reading ends just before the
start of the current UTC hour: the "last hour / last day" queries find data and every hour
folder is closed. Then its Parquet form: a copy of the data dir on which
`BINARY --config config.toml lake compact --min-age 0s` runs (its time and its summary, the
bytes before and after, are printed).

The queries: every query file of queries/ (devicedata.sql is DDL and is not run), which covers
the five kinds the issue names (whole-table count per device: count_per_device; stats and
percentiles per device: stats_per_device, percentiles_per_device; time-filtered through
datehour: hourly_last_day, last_hour_spikes; out-of-range filter: out_of_range,
top_out_of_range_devices; per minute: readings_per_minute), plus the issue's target query
"readings per device" (`SELECT deviceid, count(*) AS n FROM devicedata GROUP BY deviceid ORDER
BY deviceid`). --queries narrows the run to some of them (file stems, or "readings_per_device").

Each query runs on four engines, interleaved: `BINARY --config config.toml --format csv query
-f FILE` on the JSON lake and on the Parquet lake, and DuckDB (PyPI, pinned below, installed by
this script into bench/.venv-duckdb if `import duckdb` fails; threads = the machine's cores) on
the same files: a view devicedata over read_json(the .gz objects) or read_parquet(the .parquet
objects), with datehour taken from the object's folder. DuckDB runs as a whole process
(python -c: import duckdb, connect, create the view, run, fetch), as iotaa does; its
in-process time (execute + fetch, after the view exists) is printed apart. One warm-up round,
then --runs timed rounds: median [min-max] wall seconds.

Checks (exit 1 on a failure): every query gives the same CSV on iotaa JSON and iotaa Parquet
(queries that read current_timestamp may change between two runs, so each Parquet answer must
equal the JSON answer just before or just after it); DuckDB gives the same rows as iotaa on the
deterministic queries (counts per device and the other exact aggregations; not on the
approximate percentiles nor on the current_timestamp ones). Bytes scanned come from iotaa's
summary line on stderr. The targets (printed PASS/FAIL, they do not change the exit code): on
Parquet, 10M "readings per device" under 0.25 s and at most DuckDB's whole-process time on the
same Parquet files; bytes scanned at least 10x below the gzip JSON lake, per query."""
import argparse, csv, datetime, gzip, io, json, math, multiprocessing, os, random, re, shutil
import statistics, subprocess, sys, tempfile, time

DUCKDB_VERSION = "2.0.0"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV = os.path.join(HERE, ".venv-duckdb")
DEVICES = ["aaaa", "bbbb", "cccc", "dddd", "eeee"]
PER_OBJECT = 50_000
STEP_MS = 20

TARGET = "readings_per_device"
TARGET_SQL = "SELECT deviceid, count(*) AS n FROM devicedata GROUP BY deviceid ORDER BY deviceid"

# name -> (DuckDB's SQL, check DuckDB's rows against iotaa's). iotaa runs queries/<name>.sql
# (or TARGET_SQL); DuckDB runs this equivalent: date_format -> strftime, approx_percentile ->
# approx_quantile, the rest as written.
DUCK = {
    TARGET: (TARGET_SQL, True),
    "count_per_device": ("""SELECT deviceid, count(*) AS readings
FROM analyticsdemo.devicedata GROUP BY deviceid ORDER BY deviceid""", True),
    "stats_per_device": ("""SELECT deviceid, max(sensorreading) AS max_reading,
       min(sensorreading) AS min_reading, avg(sensorreading) AS avg_reading
FROM analyticsdemo.devicedata GROUP BY deviceid ORDER BY deviceid""", True),
    "percentiles_per_device": ("""SELECT deviceid, approx_quantile(sensorreading, 0.5) AS p50,
       approx_quantile(sensorreading, 0.99) AS p99, count(*) AS readings
FROM analyticsdemo.devicedata GROUP BY deviceid ORDER BY deviceid""", False),
    "out_of_range": ("""SELECT deviceid, sensorreading, readingtimestamp
FROM analyticsdemo.devicedata WHERE sensorreading < -5 OR sensorreading > 5
ORDER BY readingtimestamp, deviceid, sensorreading""", True),
    "top_out_of_range_devices": ("""SELECT deviceid, count(*) AS out_of_range,
       max(abs(sensorreading)) AS largest
FROM analyticsdemo.devicedata WHERE sensorreading NOT BETWEEN -5 AND 5
GROUP BY deviceid ORDER BY out_of_range DESC, deviceid LIMIT 10""", True),
    "readings_per_minute": ("""SELECT date_trunc('minute', readingtimestamp) AS minute,
       count(*) AS readings,
       sum(CASE WHEN sensorreading NOT BETWEEN -5 AND 5 THEN 1 ELSE 0 END) AS out_of_range
FROM analyticsdemo.devicedata GROUP BY date_trunc('minute', readingtimestamp) ORDER BY minute""",
                            True),
    "hourly_last_day": ("""SELECT datehour, count(*) AS readings,
       strftime(min(readingtimestamp), '%Y-%m-%d %H:%M:%S') AS first_reading,
       strftime(max(readingtimestamp), '%Y-%m-%d %H:%M:%S') AS last_reading
FROM analyticsdemo.devicedata
WHERE datehour >= strftime(current_timestamp - interval '24' hour, '%Y/%m/%d/%H')
GROUP BY datehour ORDER BY datehour""", False),
    "last_hour_spikes": ("""SELECT readingtimestamp, deviceid, sensorreading
FROM analyticsdemo.devicedata
WHERE datehour >= strftime(current_timestamp - interval '2' hour, '%Y/%m/%d/%H')
  AND readingtimestamp > current_timestamp - interval '1' hour
  AND (sensorreading < -5 OR sensorreading > 5)
ORDER BY readingtimestamp DESC, deviceid""", False),
}

# Run by DuckDB's whole-process timing: argv = lake dir, "json"|"parquet", threads, SQL.
DUCK_CHILD = r"""
import datetime, json, sys, time
import duckdb
lake, form, threads, sql = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
c = duckdb.connect(config={"threads": threads})
c.execute("SET TimeZone = 'UTC'")
c.execute("SET enable_progress_bar = false")
if form == "json":
    src = ("SELECT deviceId AS deviceid, sensorReading AS sensorreading, "
           "readingTimestamp AS readingtimestamp, filename FROM read_json(?, "
           "format = 'newline_delimited', compression = 'gzip', filename = true, "
           "columns = {'deviceId': 'VARCHAR', 'sensorReading': 'SMALLINT', "
           "'readingTimestamp': 'TIMESTAMP'}, timestampformat = '%Y-%m-%d %H:%M:%S.%g')")
    glob = lake + "/*/*/*/*/*.gz"
else:
    src = ("SELECT deviceid, sensorreading, readingtimestamp, filename "
           "FROM read_parquet(?, filename = true)")
    glob = lake + "/*/*/*/*/*.parquet"
src = src.replace("?", "'" + glob.replace("'", "''") + "'")
c.execute("CREATE SCHEMA analyticsdemo")
c.execute("CREATE VIEW analyticsdemo.devicedata AS SELECT deviceid, sensorreading, "
          "readingtimestamp, regexp_extract(filename, '(\\d{4}/\\d{2}/\\d{2}/\\d{2})/[^/]*$', 1) "
          "AS datehour FROM (" + src + ")")
c.execute("CREATE VIEW devicedata AS SELECT * FROM analyticsdemo.devicedata")
t = time.perf_counter()
rows = c.execute(sql).fetchall()
dt = time.perf_counter() - t
def cell(v):
    if v is None:
        return None
    if isinstance(v, datetime.datetime):
        return v.isoformat(sep=" ", timespec="milliseconds")
    return repr(v) if isinstance(v, float) else str(v)
print(json.dumps({"query_s": dt, "rows": [[cell(v) for v in r] for r in rows]}))
"""


def ensure_duckdb():
    """Imports duckdb, or installs the pinned version into VENV and runs this script there."""
    try:
        import duckdb  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("LAKE_BENCH_VENV"):
        sys.exit(f"lake-bench: duckdb does not import in {VENV}")
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        print(f"lake-bench: creating {VENV} (duckdb=={DUCKDB_VERSION})", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        # Keep the venv out of git (what python3.13's venv does by itself).
        with open(os.path.join(VENV, ".gitignore"), "w") as f:
            f.write("*\n")
    if subprocess.run([py, "-c", "import duckdb"], capture_output=True).returncode != 0:
        subprocess.run([py, "-m", "pip", "install", "-q", f"duckdb=={DUCKDB_VERSION}"],
                       check=True)
    os.environ["LAKE_BENCH_VENV"] = "1"
    os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])


# ---------------------------------------------------------------- the lake

def write_object(job):
    """One gzip NDJSON object: readings first..first+count, the first at start_ms (Unix ms)."""
    lake, o, start_ms, count = job
    rng = random.Random(7_000_003 + o)
    values = rng.choices(range(-5, 6), k=count)
    for i in rng.sample(range(count), min(10, count)):
        values[i] = rng.choice((-1, 1)) * rng.randint(400, 500)
    seconds = {}
    lines = []
    for i in range(count):
        ms = start_ms + i * STEP_MS
        s, frac = divmod(ms, 1000)
        prefix = seconds.get(s)
        if prefix is None:
            prefix = seconds[s] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s))
        lines.append('{"deviceId":"%s","sensorReading":%d,"readingTimestamp":"%s.%03d"}\n'
                     % (DEVICES[i % 5], values[i], prefix, frac))
    t0 = time.gmtime(start_ms // 1000)
    folder = os.path.join(lake, time.strftime("%Y/%m/%d/%H", t0))
    os.makedirs(folder, exist_ok=True)
    name = f"devicedata-1-{time.strftime('%Y-%m-%d-%H-%M-%S', t0)}-{o:04d}.gz"
    data = gzip.compress("".join(lines).encode(), compresslevel=6)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)
    return len(data)


def make_lake(root, readings):
    """The lake of `readings` readings under root/data/lake, ending at this UTC hour's start."""
    per = min(PER_OBJECT, readings)
    objects = max(1, readings // per)
    hour = int(time.time()) // 3600 * 3600
    base_ms = hour * 1000 - objects * per * STEP_MS
    lake = os.path.join(root, "data", "lake")
    jobs = [(lake, o, base_ms + o * per * STEP_MS, per) for o in range(objects)]
    with multiprocessing.Pool(min(len(jobs), os.cpu_count() or 1)) as pool:
        size = sum(pool.map(write_object, jobs))
    with open(os.path.join(root, "config.toml"), "w") as f:
        f.write('data_dir = "data"\n')
    return objects * per, objects, size


def lake_bytes(root, ext):
    n = size = 0
    for d, _, files in os.walk(os.path.join(root, "data", "lake")):
        for f in files:
            if f.endswith(ext):
                n += 1
                size += os.path.getsize(os.path.join(d, f))
    return n, size


# ---------------------------------------------------------------- running

UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
SUMMARY = re.compile(r"([\d.]+) (B|KiB|MiB|GiB|TiB) scanned in (\d+) objects?")


def fail(msg):
    print(f"lake-bench: FAILED: {msg}", flush=True)
    sys.exit(1)


def run_iotaa(binary, root, name):
    cmd = [binary, "--config", "config.toml", "--format", "csv", "query"]
    cmd += [TARGET_SQL] if name == TARGET else ["-f", os.path.join(REPO, "queries", name + ".sql")]
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        fail(f"iotaa query {name} on {root}: {out.stderr.strip()}")
    m = None
    for line in out.stderr.splitlines():
        m = SUMMARY.search(line) or m
    if m is None:
        fail(f"iotaa query {name}: no summary line on stderr: {out.stderr.strip()}")
    scanned = float(m.group(1)) * UNITS[m.group(2)]
    rows = list(csv.reader(io.StringIO(out.stdout)))
    return dt, out.stdout, rows[1:], scanned, int(m.group(3))


def run_duck(root, form, name, threads):
    sql = DUCK[name][0]
    lake = os.path.join(root, "data", "lake")
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", DUCK_CHILD, lake, form, str(threads), sql],
                         capture_output=True, text=True)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        fail(f"DuckDB {form} {name}: {out.stderr.strip()}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return dt, r["query_s"], r["rows"]


def norm(cell):
    """A cell as both engines should agree on it: numbers as numbers, times to the ms."""
    if cell is None or cell == "":
        return None
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(\.\d+)?", cell)
    if m:
        return f"{m.group(1)} {m.group(2)}" + ("%.3f" % float(m.group(3)))[1:] if m.group(3) \
            else f"{m.group(1)} {m.group(2)}.000"
    try:
        x = float(cell)
    except ValueError:
        return cell
    return float("%.9g" % x)


def spread(v):
    return f"{statistics.median(v):6.3f} [{min(v):.3f}-{max(v):.3f}]"


def human(n):
    for u in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or u == "GiB":
            return f"{n:.0f} {u}" if u == "B" else f"{n:.1f} {u}"
        n /= 1024


def bench_size(binary, readings, runs, names, threads, tmp):
    json_root = os.path.join(tmp, f"json-{readings}")
    pq_root = os.path.join(tmp, f"parquet-{readings}")
    t = time.perf_counter()
    n, objects, size = make_lake(json_root, readings)
    gen = time.perf_counter() - t
    print(f"\n== {n:,} readings: {objects} gzip JSON objects, {human(size)}, "
          f"written in {gen:.1f} s", flush=True)
    shutil.copytree(json_root, pq_root)
    t = time.perf_counter()
    out = subprocess.run([binary, "--config", "config.toml", "lake", "compact", "--min-age", "0s"],
                         cwd=pq_root, capture_output=True, text=True)
    compact_s = time.perf_counter() - t
    if out.returncode != 0:
        fail(f"lake compact: {out.stderr.strip()}")
    summary = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "(no summary)"
    left_json, _ = lake_bytes(pq_root, ".gz")
    pq_objects, pq_size = lake_bytes(pq_root, ".parquet")
    print(f"   lake compact: {compact_s:.2f} s: {summary}")
    print(f"   on disk: {human(size)} gzip JSON -> {human(pq_size)} in {pq_objects} Parquet "
          f"objects ({size / max(pq_size, 1):.1f}x smaller); JSON objects left: {left_json}",
          flush=True)
    if left_json:
        fail(f"lake compact left {left_json} JSON objects (an hour not closed?)")

    res = {}
    for name in names:
        times = {k: [] for k in ("ij", "ip", "dj", "dp", "djq", "dpq")}
        seq = []  # iotaa answers in the order they ran: (form, csv text)
        scanned = {}
        duck_rows = {}
        for run in range(runs + 1):
            dt, text, rows, b, objs = run_iotaa(binary, json_root, name)
            seq.append(("json", text))
            iotaa_rows, scanned["json"] = rows, (b, objs)
            if run:
                times["ij"].append(dt)
            dt, text, rows, b, objs = run_iotaa(binary, pq_root, name)
            seq.append(("parquet", text))
            scanned["parquet"] = (b, objs)
            if run:
                times["ip"].append(dt)
            for form, k in (("json", "dj"), ("parquet", "dp")):
                dt, q, rows = run_duck(json_root if form == "json" else pq_root, form, name,
                                       threads)
                duck_rows[form] = rows
                if run:
                    times[k].append(dt)
                    times[k + "q"].append(q)
            if DUCK[name][1]:
                want = [[norm(c) for c in r] for r in iotaa_rows]
                for form, rows in duck_rows.items():
                    got = [[norm(c) for c in r] for r in rows]
                    if got != want:
                        fail(f"{readings:,} readings, {name}: DuckDB on {form} differs from iotaa:"
                             f"\n  iotaa:  {want[:5]}{' …' if len(want) > 5 else ''}"
                             f"\n  DuckDB: {got[:5]}{' …' if len(got) > 5 else ''}"
                             f" ({len(want)} vs {len(got)} rows)")
        # JSON vs Parquet on iotaa: each Parquet answer equals the JSON answer before or after
        # it (queries that read current_timestamp may move between two runs; the others must
        # all be equal).
        moving = "current_timestamp" in sql_of(name)
        for i in range(1, len(seq), 2):
            near = [seq[i - 1][1]] + ([seq[i + 1][1]] if i + 1 < len(seq) else [])
            if seq[i][1] not in near or (not moving and seq[i][1] != seq[0][1]):
                fail(f"{readings:,} readings, {name}: iotaa answers differ on JSON and Parquet:"
                     f"\n--- JSON\n{seq[i - 1][1][:2000]}\n--- Parquet\n{seq[i][1][:2000]}")
        res[name] = (times, scanned, len(iotaa_rows))
        print(f"   {name}: {len(iotaa_rows)} rows, same on JSON and Parquet"
              + (", DuckDB agrees" if DUCK[name][1] else ""), flush=True)
    shutil.rmtree(json_root)
    shutil.rmtree(pq_root)
    return {"readings": n, "results": res, "compact_s": compact_s, "json_bytes": size,
            "parquet_bytes": pq_size}


def sql_of(name):
    if name == TARGET:
        return TARGET_SQL
    with open(os.path.join(REPO, "queries", name + ".sql")) as f:
        return f.read()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("binary")
    p.add_argument("--readings", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--queries", nargs="+", metavar="NAME",
                   help="some of: " + ", ".join(DUCK))
    a = p.parse_args()
    ensure_duckdb()
    import duckdb
    binary = os.path.abspath(a.binary)
    files = sorted(f[:-4] for f in os.listdir(os.path.join(REPO, "queries"))
                   if f.endswith(".sql") and f != "devicedata.sql")
    unknown = [f for f in files if f not in DUCK]
    if unknown:
        sys.exit(f"lake-bench: queries/ has files this script has no DuckDB SQL for: {unknown}")
    names = [TARGET] + files
    if a.queries:
        bad = [q for q in a.queries if q not in names]
        if bad:
            sys.exit(f"lake-bench: unknown queries {bad}; known: {names}")
        names = [q for q in names if q in a.queries]
    threads = len(os.sched_getaffinity(0))
    print(f"lake-bench: {binary}, DuckDB {duckdb.__version__} ({threads} threads), "
          f"{a.runs} runs after one warm-up, wall seconds median [min-max]; "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", flush=True)
    sizes = []
    with tempfile.TemporaryDirectory(prefix="lake-bench-") as tmp:
        for readings in a.readings:
            sizes.append(bench_size(binary, readings, a.runs, names, threads, tmp))

    w = max(len(n) for n in names)
    for s in sizes:
        print(f"\n== {s['readings']:,} readings: whole process (iotaa query; python -c with DuckDB)")
        print(f"   {'query':{w}}  {'iotaa JSON':>21}  {'iotaa Parquet':>21}  "
              f"{'DuckDB JSON':>21}  {'DuckDB Parquet':>21}")
        for name, (t, _, _) in s["results"].items():
            print(f"   {name:{w}}  {spread(t['ij']):>21}  {spread(t['ip']):>21}  "
                  f"{spread(t['dj']):>21}  {spread(t['dp']):>21}")
        print(f"   DuckDB in-process (execute + fetch), and bytes iotaa scanned (objects)")
        print(f"   {'query':{w}}  {'DuckDB JSON':>21}  {'DuckDB Parquet':>21}  "
              f"{'scanned JSON':>18}  {'scanned Parquet':>18}  {'ratio':>7}")
        for name, (t, sc, _) in s["results"].items():
            (bj, oj), (bp, op) = sc["json"], sc["parquet"]
            ratio = f"{bj / bp:.1f}x" if bp else ("-" if not bj else "inf")
            print(f"   {name:{w}}  {spread(t['djq']):>21}  {spread(t['dpq']):>21}  "
                  f"{human(bj) + f' ({oj})':>18}  {human(bp) + f' ({op})':>18}  {ratio:>7}")

    print("\n== targets")
    big = max(sizes, key=lambda s: s["readings"])
    label = f"{big['readings'] / 1e6:g}M"
    if TARGET in big["results"]:
        t = big["results"][TARGET][0]
        ip, dp = statistics.median(t["ip"]), statistics.median(t["dp"])
        print(f"   {'PASS' if ip < 0.25 else 'FAIL'}  {label} readings per device on Parquet "
              f"under 0.25 s: {ip:.3f} s (median)")
        print(f"   {'PASS' if ip <= dp else 'FAIL'}  {label} readings per device on Parquet at "
              f"most DuckDB's (whole process, Parquet): {ip:.3f} s vs {dp:.3f} s")
    for s in sizes:
        for name, (_, sc, _) in s["results"].items():
            bj, bp = sc["json"][0], sc["parquet"][0]
            ok = bp * 10 <= bj
            ratio = f"{bj / bp:.1f}x" if bp else "no bytes"
            print(f"   {'PASS' if ok else 'FAIL'}  {s['readings'] / 1e6:g}M {name}: Parquet "
                  f"scans at least 10x fewer bytes: {human(bj)} -> {human(bp)} ({ratio})")


if __name__ == "__main__":
    main()
