/* Draws the dashboard's three charts from the JSON the page carries (no request of its own).
   Amounts arrive as decimal strings; Chart.js reads them as numbers only to draw. */
(function () {
  "use strict";

  function read(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function money(currency) {
    var format = new Intl.NumberFormat(document.documentElement.lang || undefined, {
      style: "currency", currency: currency, maximumFractionDigits: 0
    });
    return function (value) { return format.format(value); };
  }

  function draw() {
    var data = read("chart-data");
    var words = (data && data.words) || {};
    if (!data || typeof Chart === "undefined") { return; }
    var fmt = money(data.currency);
    var axis = { ticks: { callback: fmt } };
    Chart.defaults.maintainAspectRatio = false;

    new Chart(document.getElementById("chart-utilisation"), {
      data: {
        labels: data.utilisation.labels,
        datasets: [
          { type: "line", label: words.outstanding, data: data.utilisation.outstanding,
            borderColor: "#1565c0", backgroundColor: "rgba(21,101,192,.12)", fill: true,
            pointRadius: 0, tension: 0.2, yAxisID: "y" },
          { type: "bar", label: words.financed, data: data.utilisation.financed,
            backgroundColor: "#f0a830", yAxisID: "y" }
        ]
      },
      options: { interaction: { mode: "index", intersect: false },
                 scales: { x: { ticks: { maxTicksLimit: 6 } }, y: axis } }
    });

    new Chart(document.getElementById("chart-overdue"), {
      type: "bar",
      data: {
        labels: data.overdue.labels,
        datasets: [{ label: words.overdue, data: data.overdue.outstanding,
                     backgroundColor: ["#fbc02d", "#f57c00", "#e64a19", "#b71c1c"] }]
      },
      options: { plugins: { legend: { display: false } }, scales: { y: axis } }
    });

    new Chart(document.getElementById("chart-agents"), {
      type: "bar",
      data: {
        labels: data.agents.labels,
        datasets: [
          { label: words.outstanding, data: data.agents.outstanding, backgroundColor: "#1565c0" },
          { label: words.reserved, data: data.agents.reserved, backgroundColor: "#f0a830" }
        ]
      },
      options: { indexAxis: "y", scales: { x: { stacked: true, ticks: { callback: fmt } },
                                           y: { stacked: true } } }
    });
    document.body.dataset.chartsReady = "true";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
