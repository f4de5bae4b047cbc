// The dashboard's charts (/dashboard), drawn by the vendored Chart.js (vendor/chart.umd.js,
// loaded first) from the page's <script type="application/json" id="dash-data"> block:
// no inline script, nothing fetched. Without this file (or without Chart.js) the page
// still has every number, in the tables under each chart.
"use strict";
(() => {
  const source = document.getElementById("dash-data");
  if (!source || typeof window.Chart === "undefined") {
    return;
  }
  const Chart = window.Chart;
  const charts = JSON.parse(source.textContent || "[]");
  const root = getComputedStyle(document.documentElement);
  const color = (name, fallback) => root.getPropertyValue(name).trim() || fallback;
  const ink = color("--ink", "#1d2430");
  const line = color("--line", "#d6dbe2");
  const accent = color("--accent", "#1f5fbf");
  Chart.defaults.font.family = root.fontFamily;
  Chart.defaults.color = ink;
  Chart.defaults.borderColor = line;
  // Movement only for readers who have not asked their system for less of it.
  const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  for (const spec of charts) {
    const canvas = document.getElementById(`chart-${spec.id}`);
    if (!(canvas instanceof HTMLCanvasElement)) {
      continue; // a chart without data shows a note instead
    }
    const bar = spec.type === "bar";
    const y = { beginAtZero: bar, ticks: { precision: 0 } };
    if (Array.isArray(spec.scale)) {
      y.min = spec.scale[0];
      y.max = spec.scale[1];
    }
    new Chart(canvas, {
      type: spec.type,
      data: {
        labels: spec.labels,
        datasets: [{
          label: spec.label,
          data: spec.values,
          borderColor: accent,
          backgroundColor: bar ? `${accent}cc` : accent,
          pointRadius: 3,
          spanGaps: false, // a period without answers is a gap, not a straight line
        }],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: still ? false : { duration: 300 },
        plugins: {
          legend: { display: false },
          // The same words as the table: value, n and interval, formatted by the server.
          tooltip: { callbacks: { label: (item) => spec.tips[item.dataIndex] } },
        },
        scales: { y },
      },
    });
    canvas.dataset.drawn = "true";
  }
})();
