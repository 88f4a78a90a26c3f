"""Peer for the simulator benchmark: the same work written the way the original Python system did it
(a dict per sensor, random.gauss noise, math for the daily cycle, datetime.isoformat, json.dumps).

Prints the same `key value` lines as `cargo bench -p smartcity-model --bench generate`.
Measured by bench/run.sh in the same run as the Rust side; not a test.
"""
import json
import math
import random
import time
import tracemalloc
from datetime import datetime, timedelta, timezone

KINDS = ["traffic", "air-quality", "parking", "noise", "weather", "light"]
COMMUNES = [("Fort-de-France", 14.616, -61.059), ("Le Lamentin", 14.613, -60.999), ("Schoelcher", 14.615, -61.090),
            ("Le Robert", 14.678, -60.940), ("Le François", 14.616, -60.903), ("Sainte-Anne", 14.436, -60.882),
            ("Saint-Pierre", 14.743, -61.176), ("Le Marin", 14.469, -60.869), ("La Trinité", 14.738, -60.963),
            ("Ducos", 14.575, -60.975)]


def make_sensors(n, rng):
    sensors = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        name, lat, lon = COMMUNES[(i // len(KINDS)) % len(COMMUNES)]
        sensors.append({"id": f"{kind}-{i:06d}", "type": kind, "commune": name,
                        "lat": lat + (rng.random() - 0.5) * 0.027, "lon": lon + (rng.random() - 0.5) * 0.027,
                        "capacity": 1400, "seq": 0})
    return sensors


def values(s, t, rng):
    h = (t.hour - 4) % 24 + t.minute / 60
    level = 0.05 + 0.4 * max(0.0, math.sin(math.pi * (h - 6) / 16)) + 0.55 * math.exp(-((h - 7.5) / 0.9) ** 2)
    k = s["type"]
    if k == "traffic":
        occ = min(1.0, max(0.0, 0.9 * level ** 1.5 + 0.02 * rng.gauss(0, 1)))
        return {"intensity": round(s["capacity"] * level), "occupancy": round(occ, 3),
                "averageVehicleSpeed": round(55 * (1 - 0.78 * occ * occ), 1), "congested": occ > 0.55}
    if k == "air-quality":
        pm10 = 12 + 14 * level + 2 * rng.gauss(0, 1)
        return {"pm10": round(pm10, 1), "pm25": round(pm10 * 0.45, 1), "no2": round(8 + 50 * level, 1),
                "o3": round(25 + 3 * rng.gauss(0, 1), 1), "co": round(0.2 + 0.8 * level, 2), "so2": 2.0,
                "airQualityIndex": round(pm10), "airQualityLevel": "good"}
    if k == "parking":
        occ = min(1.0, max(0.0, level + 0.04 * rng.gauss(0, 1)))
        occupied = round(150 * occ)
        return {"availableSpotNumber": 150 - occupied, "totalSpotNumber": 150, "occupancy": round(occupied / 150, 3)}
    if k == "noise":
        laeq = 42 + 28 * level + 1.5 * rng.gauss(0, 1)
        return {"LAeq": round(laeq, 1), "LAmax": round(laeq + 8, 1), "LAS": round(laeq, 1)}
    if k == "weather":
        d = math.sin(math.pi * (h - 8) / 12)
        return {"temperature": round(26.8 + 3.3 * d, 1), "relativeHumidity": round(0.78 - 0.11 * d, 3),
                "atmosphericPressure": round(1014 + rng.gauss(0, 0.2), 1), "windSpeed": 5.5, "windDirection": 90.0,
                "precipitation": 0.0}
    on = h < 6 or h >= 18.3
    return {"status": "ok", "powerState": "on" if on else "off", "illuminanceLevel": 1.0 if on else 0.0,
            "powerConsumption": 90.0 if on else 0.0}


def main():
    rng = random.Random(1)
    n = 100_000
    tracemalloc.start()
    sensors = make_sensors(n, rng)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"memory_bytes_per_sensor {size / n:.1f}")

    t0 = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
    started, readings, nbytes, tick = time.perf_counter(), 0, 0, 0
    while time.perf_counter() - started < 3.0:
        t = t0 + timedelta(seconds=5 * tick)
        stamp = t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        for s in sensors:
            doc = {"v": 1, "id": s["id"], "type": s["type"], "commune": s["commune"], "lat": s["lat"],
                   "lon": s["lon"], "observedAt": stamp, "seq": s["seq"], "values": values(s, t, rng)}
            s["seq"] += 1
            nbytes += len(json.dumps(doc, separators=(",", ":")))
            readings += 1
            if readings % 10_000 == 0 and time.perf_counter() - started >= 3.0:
                break
        tick += 1
    secs = time.perf_counter() - started
    print(f"readings_per_second_one_core {readings / secs:.0f}")
    print(f"average_json_bytes {nbytes / readings:.0f}")


if __name__ == "__main__":
    main()
