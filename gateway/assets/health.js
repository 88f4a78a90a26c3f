// Pipeline health strip: the gateway's own Prometheus counters (/metrics), read every few seconds,
// so that an operator sees on the map whether readings flow and where they pile up.
(function () {
  "use strict";

  // Prometheus text format → { metric name: sum over its series }. Labels are summed away: the strip
  // shows totals (all kinds, all sources, all reasons).
  function parseMetrics(text) {
    const sums = {};
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const v = Number(m[3]);
      if (Number.isFinite(v)) sums[m[1]] = (sums[m[1]] || 0) + v;
    }
    return sums;
  }

  function bytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  }

  function cell(id, label, value, cls) {
    return `<span class="${cls || ""}">${label} <b id="${id}">${value}</b></span>`;
  }

  // The rate needs two polls: the counter's change over the time between them.
  function render(strip, now, prev) {
    const m = now.metrics;
    const accepted = (p) => p.metrics.smartcity_gateway_readings_accepted_total || 0;
    const rate = prev ? (accepted(now) - accepted(prev)) / ((now.at - prev.at) / 1000) : null;
    const full = (m.smartcity_gateway_spool_full || 0) > 0;
    const dead = m.smartcity_gateway_messages_rejected_total || 0;
    strip.innerHTML = [
      cell("h-sensors", "sensors seen", m.smartcity_gateway_sensors || 0),
      cell("h-rate", "readings/s", rate === null || !Number.isFinite(rate) ? "…" : Math.max(0, rate).toFixed(1)),
      cell("h-dead", "dead letters", dead, dead > 0 ? "warn" : ""),
      cell("h-written", "points written", m.smartcity_gateway_points_written_total || 0),
      cell("h-spool", "spool", `${bytes(m.smartcity_gateway_spool_bytes || 0)} · ${full ? "FULL" : "ok"}`, full ? "bad" : ""),
    ].join("");
  }

  function start(strip, periodMs) {
    let prev = null;
    async function poll() {
      try {
        const res = await fetch("/metrics", { cache: "no-store" });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const now = { at: Date.now(), metrics: parseMetrics(await res.text()) };
        render(strip, now, prev);
        prev = now;
      } catch (e) {
        strip.innerHTML = `<span class="bad">metrics unreachable: ${e.message}</span>`;
      }
    }
    poll();
    setInterval(poll, periodMs);
  }

  window.PipelineHealth = { start, parseMetrics };
})();
