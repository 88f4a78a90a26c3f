// History chart of one sensor, drawn by hand in SVG (no chart library: the page must work offline).
// window.HistoryChart.draw(svg, readings, series) draws one line per series, a time axis in Martinique's
// local time and one value axis per unit (left for the first unit, right for a second one).
(function () {
  "use strict";
  const svgNS = "http://www.w3.org/2000/svg";
  const W = 440, H = 220;
  const PAD = { left: 52, right: 52, top: 12, bottom: 24 };
  // Martinique's wall clock, whatever the browser's time zone (the city is the reference, not the viewer).
  const CLOCK = { timeZone: "America/Martinique", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  const TIME = new Intl.DateTimeFormat("en-GB", CLOCK);
  // Seconds only when ticks are less than a minute apart (a history of a few readings).
  const TIME_S = new Intl.DateTimeFormat("en-GB", { ...CLOCK, second: "2-digit" });
  // Dates for ranges of days (InfluxDB), in Martinique too.
  const DATE = new Intl.DateTimeFormat("en-GB", { timeZone: "America/Martinique", day: "2-digit", month: "2-digit" });
  // Tick spacings a reader can add up in their head, from seconds (a fresh demo) to weeks (a 30-day range).
  const DAY = 86400000;
  const TIME_STEPS = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800].map((s) => s * 1000);
  // Martinique is UTC-4 all year (no daylight saving): its midnight is 04:00 UTC.
  const LOCAL_MIDNIGHT = 4 * 3600000;

  // About `count` round values (1, 2 or 5 times a power of ten) covering [lo, hi].
  function valueTicks(lo, hi, count) {
    if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
    const raw = (hi - lo) / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const ticks = [];
    for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-6; v += step) ticks.push(Number(v.toPrecision(12)));
    if (ticks[ticks.length - 1] < hi) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
    return ticks;
  }

  // Time ticks on multiples of a round step. Martinique is UTC-4 all year (no daylight saving), so
  // multiples of an hour or less in UTC fall on the same round minutes locally; steps of days are
  // counted from local midnight. Labels: HH:MM (HH:MM:SS under a minute), DD/MM for days, and
  // DD/MM HH:MM when a range of hours crosses more than a day.
  function timeTicks(t0, t1) {
    const step = TIME_STEPS.find((s) => (t1 - t0) / s <= 5) || TIME_STEPS[TIME_STEPS.length - 1];
    const origin = step >= DAY ? LOCAL_MIDNIGHT : 0;
    const ticks = [];
    for (let t = Math.ceil((t0 - origin) / step) * step + origin; t <= t1; t += step) ticks.push(t);
    const label = step >= DAY ? (t) => DATE.format(t)
      : t1 - t0 > DAY ? (t) => `${DATE.format(t)} ${TIME.format(t)}`
      : step < 60000 ? (t) => TIME_S.format(t) : (t) => TIME.format(t);
    return ticks.map((t) => [t, label(new Date(t))]);
  }

  function el(name, attrs, text) {
    const e = document.createElementNS(svgNS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // series: [{ key, label, unit, color, scale }]; `scale` turns a wire value into the charted one (0-1 → %).
  function draw(svg, readings, series) {
    svg.replaceChildren();
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const times = readings.map((r) => Date.parse(r.observedAt));
    let t0 = Math.min(...times), t1 = Math.max(...times);
    if (t1 === t0) { t0 -= 30000; t1 += 30000; }
    const x = (t) => PAD.left + (t - t0) / (t1 - t0) * (W - PAD.left - PAD.right);
    const bottom = H - PAD.bottom;

    // Time axis: a baseline, vertical grid lines and HH:MM labels.
    svg.appendChild(el("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: bottom, y2: bottom }));
    for (const [t, label] of timeTicks(t0, t1)) {
      svg.appendChild(el("line", { class: "grid", x1: x(t), x2: x(t), y1: PAD.top, y2: bottom }));
      svg.appendChild(el("text", { class: "tick-label time-tick", x: x(t), y: H - 8, "text-anchor": "middle" }, label));
    }

    // One value axis per unit: the lines of a kind rarely share one (veh/h and km/h).
    const units = [...new Set(series.map((s) => s.unit))].slice(0, 2);
    units.forEach((unit, side) => {
      const mine = series.filter((s) => s.unit === unit);
      const values = mine.flatMap((s) => readings.map((r) => s.scale(r.values[s.key]))).filter(Number.isFinite);
      if (values.length === 0) return;
      const ticks = valueTicks(Math.min(...values), Math.max(...values), 4);
      const lo = ticks[0], hi = ticks[ticks.length - 1];
      const y = (v) => bottom - (v - lo) / (hi - lo) * (bottom - PAD.top);
      const ax = side === 0 ? PAD.left : W - PAD.right;
      svg.appendChild(el("line", { class: "axis", x1: ax, x2: ax, y1: PAD.top, y2: bottom }));
      for (const v of ticks) {
        if (side === 0) svg.appendChild(el("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }));
        const [lx, anchor] = side === 0 ? [ax - 4, "end"] : [ax + 4, "start"];
        svg.appendChild(el("text", { class: "tick-label value-tick", x: lx, y: y(v) + 3, "text-anchor": anchor }, `${v} ${unit}`));
      }
      for (const s of mine) {
        const points = readings
          .map((r, i) => [times[i], s.scale(r.values[s.key])])
          .filter(([, v]) => Number.isFinite(v))
          .map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
        svg.appendChild(el("polyline", { class: "history", "data-key": s.key, stroke: s.color, points }));
      }
    });
  }

  window.HistoryChart = { draw, valueTicks, timeTicks };
})();
