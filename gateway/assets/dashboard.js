// Live map: polls /api/readings every 2 s and /metrics every 3 s; one marker per sensor, filled with the
// colour of its state (congestion, air-quality level, lamp fault…) and ringed with the colour of its kind.
(function () {
  "use strict";
  // The ring of a marker: which kind of sensor it is.
  const KIND_COLORS = {
    "traffic": "#f97316", "air-quality": "#a3e635", "parking": "#38bdf8",
    "noise": "#e879f9", "weather": "#facc15", "light": "#f8fafc",
  };
  const GOOD = "#22c55e", FAIR = "#facc15", POOR = "#f97316", BAD = "#ef4444", VERY_BAD = "#a855f7",
    WORST = "#7f1d1d", OFF = "#64748b", COOL = "#38bdf8";
  // The fill of a marker: per kind, the first rule whose test holds gives the colour. The legend is
  // generated from the same table, so the two cannot disagree. Thresholds: docs/wire-format.md fields.
  // A device may measure only part of its kind (a partial reading): every rule tests an attribute
  // that is there, so a reading without the ones its state needs is "not measured", never a guess.
  const STATES = {
    "traffic": [
      [BAD, "congested", (v) => v.congested === true],
      [POOR, "occupancy ≥ 50 %", (v) => v.occupancy >= 0.5],
      [FAIR, "occupancy ≥ 25 %", (v) => v.occupancy >= 0.25],
      [GOOD, "fluid", (v) => v.congested === false || Number.isFinite(v.occupancy)],
    ],
    "air-quality": [
      [GOOD, "good", (v) => v.airQualityLevel === "good"],
      [FAIR, "moderate", (v) => v.airQualityLevel === "moderate"],
      [POOR, "unhealthy for sensitive groups", (v) => v.airQualityLevel === "unhealthyForSensitiveGroups"],
      [BAD, "unhealthy", (v) => v.airQualityLevel === "unhealthy"],
      [VERY_BAD, "very unhealthy", (v) => v.airQualityLevel === "veryUnhealthy"],
      [WORST, "hazardous", (v) => v.airQualityLevel === "hazardous"],
    ],
    "parking": [
      [BAD, "full or ≥ 95 %", (v) => v.availableSpotNumber === 0 || occupied(v) >= 0.95],
      [POOR, "≥ 80 % taken", (v) => occupied(v) >= 0.8],
      [GOOD, "spaces free", (v) => Number.isFinite(occupied(v))],
    ],
    "noise": [
      [BAD, "LAeq > 75 dB(A)", (v) => v.LAeq > 75],
      [POOR, "LAeq > 65 dB(A)", (v) => v.LAeq > 65],
      [GOOD, "≤ 65 dB(A)", (v) => Number.isFinite(v.LAeq)],
    ],
    "weather": [
      [BAD, "> 31 °C", (v) => v.temperature > 31],
      [POOR, "> 28 °C", (v) => v.temperature > 28],
      [GOOD, "> 24 °C", (v) => v.temperature > 24],
      [COOL, "≤ 24 °C", (v) => Number.isFinite(v.temperature)],
    ],
    "light": [
      [BAD, "fault", (v) => v.status !== undefined && v.status !== "ok"],
      [OFF, "off", (v) => v.powerState === "off"],
      [GOOD, "on / low / booting", (v) => v.powerState !== undefined],
    ],
  };
  // Parking occupancy from the spot counts (available/total), the fields a car park really reports;
  // undefined when neither the counts nor the occupancy were measured.
  function occupied(v) {
    const counted = v.totalSpotNumber > 0 && Number.isFinite(v.availableSpotNumber);
    return counted ? 1 - v.availableSpotNumber / v.totalSpotNumber : v.occupancy;
  }
  function stateOf(r) {
    const rule = (STATES[r.type] || []).find(([, , test]) => test(r.values));
    return rule ? { color: rule[0], label: rule[1] } : { color: "#999", label: "state not measured" };
  }

  const UNITS = {
    intensity: "veh/h", averageVehicleSpeed: "km/h", pm10: "µg/m³", pm25: "µg/m³", no2: "µg/m³",
    o3: "µg/m³", co: "mg/m³", so2: "µg/m³", LAeq: "dB(A)", LAmax: "dB(A)", LAS: "dB(A)",
    temperature: "°C", atmosphericPressure: "hPa", windSpeed: "m/s", windDirection: "°",
    precipitation: "mm", powerConsumption: "W",
  };
  const RATIOS = new Set(["occupancy", "relativeHumidity", "illuminanceLevel"]);
  // The lines of the detail chart, per kind: its main values (at most two units, one axis each).
  const CHART = {
    "traffic": ["intensity", "averageVehicleSpeed"],
    "air-quality": ["pm10", "pm25", "no2", "o3"],
    "parking": ["occupancy"],
    "noise": ["LAeq", "LAmax", "LAS"],
    "weather": ["temperature", "relativeHumidity"],
    "light": ["powerConsumption", "illuminanceLevel"],
  };
  const LINE_COLORS = ["#38bdf8", "#f97316", "#a3e635", "#e879f9"];

  // Equirectangular projection scaled by cos(latitude), fitted to the viewBox.
  const LON0 = -61.25, LAT0 = 14.90, SCALE = 940, COS = Math.cos(14.65 * Math.PI / 180);
  const project = (lat, lon) => [(lon - LON0) * COS * SCALE + 10, (LAT0 - lat) * SCALE + 10];
  const svgNS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  // A sensor can be preselected with a link: http://127.0.0.1:8080/#traffic-fort-de-france-01
  let selected = decodeURIComponent(location.hash.slice(1)) || null;
  const hiddenKinds = new Set();
  let lastReadings = [];

  function drawIsland() {
    // The coastline: Natural Earth 1:10m (scripts/coastline/generate.mjs writes martinique.js).
    const outline = window.MARTINIQUE_OUTLINE.map(([lon, lat]) => project(lat, lon).map((v) => v.toFixed(1)).join(","));
    $("land").setAttribute("points", outline.join(" "));
    if (window.MARTINIQUE_ATTRIBUTION) $("attribution").textContent = window.MARTINIQUE_ATTRIBUTION;
    for (const [name, lat, lon] of window.MARTINIQUE_TOWNS) {
      const [x, y] = project(lat, lon);
      const t = document.createElementNS(svgNS, "text");
      t.setAttribute("x", x + 4); t.setAttribute("y", y - 4); t.setAttribute("class", "town");
      t.textContent = name;
      $("towns").appendChild(t);
    }
  }

  // One checkbox per kind (ringed like its markers) and, under it, what the fill colours mean.
  function drawFiltersAndLegend() {
    $("filters").innerHTML = Object.entries(KIND_COLORS).map(([k, c]) =>
      `<label><input type="checkbox" data-kind="${k}" checked><i class="ring" style="border-color:${c}"></i>${k}</label>`).join("");
    $("filters").addEventListener("change", (e) => {
      const kind = e.target.dataset.kind;
      if (e.target.checked) hiddenKinds.delete(kind); else hiddenKinds.add(kind);
      render(lastReadings);
    });
    $("legend").innerHTML = Object.entries(STATES).map(([k, rules]) =>
      `<div><b style="color:${KIND_COLORS[k]}">${k}</b> ` +
      rules.map(([c, label]) => `<span><i style="background:${c}"></i>${escapeHtml(label)}</span>`).join("") + "</div>").join("");
  }

  function fmt(key, v) {
    if (typeof v === "number" && RATIOS.has(key)) return `${key} ${(v * 100).toFixed(0)} %`;
    // At most two decimals: a point of an InfluxDB range holds means (127.33333333333333).
    if (typeof v === "number") return `${key} ${+v.toFixed(2)}${UNITS[key] ? " " + UNITS[key] : ""}`;
    return `${key} ${v}`;
  }
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  // Creates or moves the marker of a reading. Hidden kinds have no marker at all, so a filtered map
  // is exactly what its DOM says.
  function upsertMarker(r, now) {
    const markers = $("markers");
    let m = markers.querySelector(`[data-sensor-id="${CSS.escape(r.id)}"]`);
    if (!m) {
      m = document.createElementNS(svgNS, "circle");
      m.setAttribute("class", "marker");
      m.setAttribute("r", 6);
      m.dataset.sensorId = r.id;
      m.addEventListener("click", () => select(r.id));
      m.appendChild(document.createElementNS(svgNS, "title"));
      markers.appendChild(m);
    }
    const [x, y] = project(r.lat, r.lon);
    const state = stateOf(r);
    m.setAttribute("cx", x.toFixed(1)); m.setAttribute("cy", y.toFixed(1));
    m.setAttribute("fill", state.color);
    m.setAttribute("stroke", KIND_COLORS[r.type] || "#999");
    m.dataset.kind = r.type;
    m.dataset.state = state.label;
    m.classList.toggle("stale", (now - Date.parse(r.observedAt)) / 1000 > 300);
    m.classList.toggle("selected", r.id === selected);
    const values = Object.entries(r.values).map(([k, v]) => fmt(k, v));
    m.firstChild.textContent = [`${r.id} (${r.commune}): ${state.label}`, ...values].join("\n");
  }

  function tableRow(r, now) {
    const age = Math.max(0, Math.round((now - Date.parse(r.observedAt)) / 1000));
    const vals = Object.entries(r.values).map(([k, v]) => escapeHtml(fmt(k, v))).join(" · ");
    const state = stateOf(r);
    return `<tr data-id="${escapeHtml(r.id)}" class="${r.id === selected ? "selected" : ""}"><td>` +
      `<i class="dot" style="background:${state.color};border-color:${KIND_COLORS[r.type]}"></i> ${escapeHtml(r.id)}<br>` +
      `<span class="values">${escapeHtml(r.commune)} · #${r.seq} · ${escapeHtml(state.label)}</span></td>` +
      `<td class="values">${vals}</td><td>${age}s</td></tr>`;
  }

  function render(readings) {
    lastReadings = readings;
    const now = Date.now();
    const shown = readings.filter((r) => !hiddenKinds.has(r.type));
    const keep = new Set(shown.map((r) => r.id));
    for (const m of Array.from($("markers").children)) if (!keep.has(m.dataset.sensorId)) m.remove();
    for (const r of shown) upsertMarker(r, now);
    $("sensors").innerHTML = shown.map((r) => tableRow(r, now)).join("");
    $("status").textContent = `${shown.length} of ${readings.length} sensors shown · updated ${new Date().toLocaleTimeString()}`;
  }

  function select(id) {
    selected = id;
    history.replaceState(null, "", `#${encodeURIComponent(id)}`);
    refresh();
  }
  function closeDetail() {
    selected = null;
    history.replaceState(null, "", location.pathname + location.search);
    $("detail").hidden = true;
    render(lastReadings);
  }

  // The chart's range: "" is live (the readings the gateway keeps in memory, redrawn every refresh);
  // "1h", "24h"… come from InfluxDB when the gateway has it, else from memory (the header says which).
  let range = "";
  const RANGE_NAMES = { "10m": "10 min", "1h": "1 h", "6h": "6 h", "24h": "24 h", "7d": "7 days", "30d": "30 days" };
  // A range is fetched again at most every 30 s (a 30-day query every 2 s would be wasted work).
  const RANGE_REFRESH_MS = 30000;
  let rangeCache = null;
  // Each drawing gets a number; an answer that arrives after a newer drawing started is dropped.
  let drawing = 0;

  function setRange(r) {
    range = r;
    for (const b of $("detail-ranges").querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.range === r));
    drawDetail();
  }

  // GET /api/sensors/{id}/history[?range=…]: { readings, source, window } or { error, status }.
  // InfluxDB failing (502) falls back to the memory history, with the reason kept to say so.
  async function loadHistory(id, r) {
    const query = r ? `?range=${encodeURIComponent(r)}` : "";
    const res = await fetch(`/api/sensors/${encodeURIComponent(id)}/history${query}`, { cache: "no-store" });
    if (res.ok) {
      return {
        readings: await res.json(),
        source: res.headers.get("X-History-Source") || "memory",
        window: Number(res.headers.get("X-History-Window")) || 0,
      };
    }
    const error = (await res.json().catch(() => ({}))).error || `HTTP ${res.status}`;
    if (res.status === 502 && r) return { ...(await loadHistory(id, "")), failed: error };
    return { error, status: res.status };
  }

  function rangeHistory(id, r) {
    const key = `${id}|${r}`;
    if (!rangeCache || rangeCache.key !== key || Date.now() - rangeCache.at > RANGE_REFRESH_MS) {
      rangeCache = { key, at: Date.now(), promise: loadHistory(id, r) };
      // A failure is tried again sooner than a success is refreshed.
      rangeCache.promise.then((h) => { if ((h.failed || h.error) && rangeCache && rangeCache.key === key) rangeCache.at -= RANGE_REFRESH_MS - 5000; });
    }
    return rangeCache.promise;
  }

  function windowText(seconds) {
    if (seconds >= 86400) return `${+(seconds / 86400).toFixed(1)} d`;
    if (seconds >= 3600) return `${+(seconds / 3600).toFixed(1)} h`;
    if (seconds >= 60) return `${Math.round(seconds / 60)} min`;
    return `${seconds} s`;
  }

  // What the chart shows and where it came from.
  function describe(h, r, n) {
    if (h.failed) return `${h.failed}. Showing the last ${n} readings kept in memory instead.`;
    if (!r) return `live: the last ${n} readings kept in memory by the gateway`;
    const span = RANGE_NAMES[r] || r;
    if (h.source === "influxdb") {
      const means = h.window > 0 ? `, numbers averaged over ${windowText(h.window)}` : "";
      return `from InfluxDB: last ${span}, ${n} points${means}`;
    }
    return `from memory: ${n} readings in the last ${span} (the gateway keeps only its latest readings; configure InfluxDB for more)`;
  }

  // The selected sensor's history: one line per main value of its kind.
  async function drawDetail() {
    if (!selected) return;
    const id = selected, r = range, mine = ++drawing;
    const h = r ? await rangeHistory(id, r) : await loadHistory(id, "");
    if (mine !== drawing || id !== selected) return;
    if (h.error && h.status === 404) { $("detail").hidden = true; return; }
    const readings = h.readings || [];
    // The title and keys show the sensor now; the chart shows the range.
    const latest = lastReadings.find((x) => x.id === id) || readings[readings.length - 1];
    if (!latest) return;
    // Only the values this sensor measures (a partial reading has no line for the others).
    const measured = (key) => latest.values[key] !== undefined || readings.some((x) => x.values[key] !== undefined);
    const series = (CHART[latest.type] || []).filter(measured).map((key, i) => ({
      key, label: key, color: LINE_COLORS[i % LINE_COLORS.length],
      unit: RATIOS.has(key) ? "%" : UNITS[key] || "",
      scale: RATIOS.has(key) ? (v) => Number(v) * 100 : Number,
    }));
    if (readings.length > 0) window.HistoryChart.draw($("detail-chart"), readings, series);
    else $("detail-chart").replaceChildren();
    $("detail-title").textContent = `${id} · ${latest.commune} · ${stateOf(latest).label}`;
    $("detail-keys").innerHTML = series.filter((s) => latest.values[s.key] !== undefined).map((s) =>
      `<span><i style="background:${s.color}"></i>${escapeHtml(fmt(s.key, latest.values[s.key]))}</span>`).join("");
    const note = $("detail-range");
    note.textContent = h.error ? `history unavailable: ${h.error}` : describe(h, r, readings.length);
    note.dataset.source = h.source || "";
    note.classList.toggle("warn", Boolean(h.failed || h.error));
    $("detail").hidden = false;
  }

  async function refresh() {
    try {
      const res = await fetch("/api/readings", { cache: "no-store" });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      render(await res.json());
      await drawDetail();
      $("error").textContent = "";
    } catch (e) {
      $("error").textContent = `gateway unreachable: ${e.message}`;
    }
  }

  // Scripted clicks for browsers without input (the headless test uses --dump-dom):
  // ?actions=toggle:noise,click:ID,range:24h clicks the kind's checkbox, the sensor's marker or the detail's
  // range button (range:live for the live chart), the same events a person's click fires.
  function runActions() {
    const actions = new URLSearchParams(location.search).get("actions");
    for (const action of (actions || "").split(",").filter(Boolean)) {
      const [verb, arg] = [action.slice(0, action.indexOf(":")), action.slice(action.indexOf(":") + 1)];
      const target = verb === "toggle" ? $("filters").querySelector(`input[data-kind="${CSS.escape(arg)}"]`)
        : verb === "range" ? $("detail-ranges").querySelector(`button[data-range="${CSS.escape(arg === "live" ? "" : arg)}"]`)
        : $("markers").querySelector(`[data-sensor-id="${CSS.escape(arg)}"]`);
      if (target) target.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    }
  }

  $("sensors").addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-id]");
    if (row) select(row.dataset.id);
  });
  $("detail-close").addEventListener("click", closeDetail);
  $("detail-ranges").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-range]");
    if (button) setRange(button.dataset.range);
  });
  drawIsland();
  drawFiltersAndLegend();
  window.PipelineHealth.start($("health"), 3000);
  refresh().then(runActions);
  setInterval(refresh, 2000);
})();
