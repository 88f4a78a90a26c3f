// Live map: polls /api/readings every 2 s and draws one marker per sensor.
(function () {
  "use strict";
  const COLORS = {
    "traffic": "#f97316", "air-quality": "#a3e635", "parking": "#38bdf8",
    "noise": "#e879f9", "weather": "#facc15", "light": "#f8fafc",
  };
  const UNITS = {
    intensity: "veh/h", averageVehicleSpeed: "km/h", pm10: "µg/m³", pm25: "µg/m³", no2: "µg/m³",
    o3: "µg/m³", co: "mg/m³", so2: "µg/m³", LAeq: "dB(A)", LAmax: "dB(A)", LAS: "dB(A)",
    temperature: "°C", atmosphericPressure: "hPa", windSpeed: "m/s", windDirection: "°",
    precipitation: "mm", powerConsumption: "W",
  };
  const RATIOS = new Set(["occupancy", "relativeHumidity", "illuminanceLevel"]);
  // The value charted in the history panel, per kind.
  const MAIN = {
    "traffic": "intensity", "air-quality": "pm10", "parking": "occupancy",
    "noise": "LAeq", "weather": "temperature", "light": "powerConsumption",
  };
  // Equirectangular projection scaled by cos(latitude), fitted to the viewBox.
  const LON0 = -61.25, LAT0 = 14.90, SCALE = 940, COS = Math.cos(14.65 * Math.PI / 180);
  const project = (lat, lon) => [(lon - LON0) * COS * SCALE + 10, (LAT0 - lat) * SCALE + 10];
  const svgNS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  // A sensor can be preselected with a link: http://127.0.0.1:8080/#traffic-fort-de-france-01
  let selected = decodeURIComponent(location.hash.slice(1)) || null;

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
  $("legend").innerHTML = Object.entries(COLORS)
    .map(([k, c]) => `<span><i style="background:${c}"></i>${k}</span>`).join("");

  function fmt(key, v) {
    if (typeof v === "number" && RATIOS.has(key)) return `${key} ${(v * 100).toFixed(0)} %`;
    if (typeof v === "number") return `${key} ${v}${UNITS[key] ? " " + UNITS[key] : ""}`;
    return `${key} ${v}`;
  }
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function render(readings) {
    const now = Date.now();
    const markers = $("markers");
    const seen = new Set();
    for (const r of readings) {
      seen.add(r.id);
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
      m.setAttribute("cx", x.toFixed(1)); m.setAttribute("cy", y.toFixed(1));
      m.setAttribute("fill", COLORS[r.type] || "#999");
      const ageS = (now - Date.parse(r.observedAt)) / 1000;
      m.classList.toggle("stale", ageS > 300);
      m.classList.toggle("selected", r.id === selected);
      m.firstChild.textContent = `${r.id} (${r.commune})\n` + Object.entries(r.values).map(([k, v]) => fmt(k, v)).join("\n");
    }
    for (const m of Array.from(markers.children)) if (!seen.has(m.dataset.sensorId)) m.remove();
    $("sensors").innerHTML = readings.map((r) => {
      const age = Math.max(0, Math.round((now - Date.parse(r.observedAt)) / 1000));
      const vals = Object.entries(r.values).map(([k, v]) => escapeHtml(fmt(k, v))).join(" · ");
      return `<tr data-id="${escapeHtml(r.id)}" class="${r.id === selected ? "selected" : ""}"><td><i style="color:${COLORS[r.type]}">●</i> ${escapeHtml(r.id)}<br><span class="values">${escapeHtml(r.commune)} · #${r.seq}</span></td><td class="values">${vals}</td><td>${age}s</td></tr>`;
    }).join("");
    $("status").textContent = `${readings.length} sensors · updated ${new Date().toLocaleTimeString()}`;
  }

  function select(id) {
    selected = id;
    history.replaceState(null, "", `#${encodeURIComponent(id)}`);
    refresh();
  }
  $("sensors").addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-id]");
    if (row) select(row.dataset.id);
  });

  // The selected sensor's recent readings, as a line of its main value.
  async function drawHistory() {
    if (!selected) return;
    const res = await fetch(`/api/sensors/${encodeURIComponent(selected)}/history`, { cache: "no-store" });
    if (!res.ok) { $("history").hidden = true; return; }
    const readings = await res.json();
    if (readings.length === 0) return;
    const key = MAIN[readings[0].type];
    const values = readings.map((r) => Number(r.values[key]));
    const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
    const step = values.length > 1 ? 440 / (values.length - 1) : 0;
    const points = values.map((v, i) => `${(i * step).toFixed(1)},${(85 - (v - lo) / span * 80).toFixed(1)}`).join(" ");
    $("history-chart").innerHTML = `<polyline class="history" points="${points}"></polyline>`;
    $("history-title").textContent =
      `${selected} · ${fmt(key, values[values.length - 1])} (last ${values.length} readings, min ${lo}, max ${hi})`;
    $("history").hidden = false;
  }

  async function refresh() {
    try {
      const res = await fetch("/api/readings", { cache: "no-store" });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      render(await res.json());
      await drawHistory();
      $("error").textContent = "";
    } catch (e) {
      $("error").textContent = `gateway unreachable: ${e.message}`;
    }
  }
  refresh();
  setInterval(refresh, 2000);
})();
