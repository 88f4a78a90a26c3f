"""End-to-end latency probe: from a reading's observedAt to the moment it can be queried in InfluxDB.
Polls InfluxDB (Flux, every POLL seconds) for the latest `seq` point of each probe sensor; each time
a sensor's latest seq changes, records (now - that point's time). Runs for DURATION seconds and
prints one latency in seconds per line. The poll period bounds the error: a point becomes visible
at most POLL seconds before it is seen. Needs only the standard library.
Usage: python3 latency_probe.py URL ORG BUCKET TOKEN_FILE DURATION POLL SENSOR_ID..."""
import csv
import io
import sys
import time
import urllib.request
from datetime import datetime

url, org, bucket, token_file, duration, poll = sys.argv[1:7]
sensors = sys.argv[7:]
token = open(token_file).read().strip()
duration, poll = float(duration), float(poll)
ids = " or ".join(f'r.sensor_id == "{s}"' for s in sensors)
flux = (f'from(bucket: "{bucket}") |> range(start: -2m) '
        f'|> filter(fn: (r) => r._field == "seq" and ({ids})) |> group(columns: ["sensor_id"]) |> last()')
request = urllib.request.Request(
    f"{url}/api/v2/query?org={org}", data=flux.encode(), method="POST",
    headers={"Authorization": f"Token {token}", "Content-Type": "application/vnd.flux", "Accept": "application/csv"})

latest = {}
end = time.time() + duration
first = True
while time.time() < end:
    with urllib.request.urlopen(request, timeout=10) as answer:
        seen = time.time()
        rows = list(csv.DictReader(io.StringIO(answer.read().decode())))
    for row in rows:
        if not row.get("sensor_id"):
            continue
        seq = int(row["_value"])
        if not first and latest.get(row["sensor_id"]) != seq:
            observed = datetime.fromisoformat(row["_time"].replace("Z", "+00:00")).timestamp()
            print(f"{seen - observed:.3f}", flush=True)
        latest[row["sensor_id"]] = seq
    first = False  # what is already there at the start has an unknown arrival time
    time.sleep(max(0.0, poll - (time.time() - seen)))
