// adlmon status page charts (uPlot, vendored in static/vendor): waves over time, the regret
// bound and each policy's loss, one wave's sorted haircuts, the exposure queue and what-if.
// Every chart keeps the numbers it plots in data-points (JSON, the arrays handed to uPlot)
// and in a "Numbers" table one click away. Text only, never innerHTML. Uses status.js's
// helpers (el, usd, endMs, optimalOf, getJson, fill): it loads after it.
"use strict";

const COLORS = ["#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#1b7c83",
                "#953800", "#57606a", "#0550ae", "#116329"];
window.adlmonErrors = [];
window.addEventListener("error", (e) => {
  window.adlmonErrors.push(String(e.message || (e.target && e.target.src) || e));
  document.body.dataset.errors = String(window.adlmonErrors.length);
}, true);

function money(x) {
  return (x === null || x === undefined || !isFinite(x)) ? "—" : usd(x);  // usd() of status.js
}

function num(x) {
  return typeof x === "number" && isFinite(x) ? x : null;
}

// A chart of series over x, plus its numbers. series: [{label, values}], opts: {time, xLabel}.
function drawChart(id, xs, series, opts) {
  const box = document.getElementById(id);
  if (box._plot) { box._plot.destroy(); box._plot = null; }
  box.replaceChildren();
  const data = [xs, ...series.map((s) => s.values)];
  box.dataset.points = JSON.stringify({ x: xs, series: Object.fromEntries(series.map((s) => [s.label, s.values])) });
  if (xs.length === 0) {
    box.appendChild(el("p", "no data yet", "muted"));
    box.dataset.points = JSON.stringify({ x: [], series: {} });
    return;
  }
  // the box, but never wider than the viewport (a wide table must not widen a phone's chart)
  const width = Math.max(260, Math.min(box.clientWidth || 600, document.documentElement.clientWidth - 24));
  const plot = new uPlot({
    width: width,
    height: width < 500 ? 220 : 280,
    scales: { x: { time: !!opts.time } },
    axes: [opts.integer ? { label: opts.xLabel || "", incrs: [1, 2, 5, 10, 20, 50, 100] } : { label: opts.xLabel || "" },
           { values: (u, ticks) => ticks.map(money), size: 70 }],
    series: [{ label: opts.xLabel || "x" }, ...series.map((s, i) => ({
      label: s.label, stroke: COLORS[i % COLORS.length], width: 2,
      points: { show: xs.length <= 60 }, spanGaps: false, value: (u, v) => money(v),
    }))],
  }, data, box);
  box._plot = plot;
  box.dataset.drawn = String(plot.series.length - 1);
  // the numbers, one click away
  const det = el("details");
  det.appendChild(el("summary", "Numbers"));
  const wrap = el("div", null, "scroll");
  const t = el("table");
  const hr = el("tr");
  hr.appendChild(el("th", opts.xLabel || "x"));
  for (const s of series) hr.appendChild(el("th", s.label, "num"));
  t.appendChild(el("thead")).appendChild(hr);
  const tb = el("tbody");
  xs.forEach((x, i) => {
    const tr = el("tr");
    tr.appendChild(el("td", opts.time ? new Date(x * 1000).toISOString().replace("T", " ").replace(".000Z", "") : x));
    for (const s of series) tr.appendChild(el("td", money(s.values[i]), "num"));
    tb.appendChild(tr);
  });
  t.appendChild(tb);
  wrap.appendChild(t);
  det.appendChild(wrap);
  box.appendChild(det);
}

function waveTime(w) {
  const ms = endMs(w);  // status.js
  return ms === null ? null : ms / 1000;
}

function renderWaveCharts(waves, horizons) {
  const ws = waves.filter((w) => waveTime(w) !== null).sort((a, b) => waveTime(a) - waveTime(b));
  const xs = ws.map(waveTime);
  const hs = (horizons && horizons.length ? horizons : [0]).map(String);
  const series = [{ label: "needed B", values: ws.map((w) => num(w.needed_usd)) }];
  for (const h of hs) {
    series.push({ label: "H(" + h + " ms)", values: ws.map((w) => num((w.production_haircut_usd || {})[h])) });
  }
  series.push({ label: "optimum", values: ws.map((w) => num(optimalOf(w).total)) });
  series.push({ label: "excess H(" + hs[0] + ") − optimum", values: ws.map((w) => {
    const cf = w.counterfactual || {};
    const ex = (cf.excess_vs_optimal_usd || {})[hs[0]];
    return num(ex);
  }) });
  drawChart("chart-waves", xs, series, { time: true, xLabel: "wave end (UTC)" });

  const counted = ws.filter((w) => w.counterfactual && w.counterfactual.regret && w.counterfactual.regret.counted);
  const names = [];
  for (const w of counted) {
    for (const n of Object.keys(w.counterfactual.regret.cumulative_loss_usd || {})) if (!names.includes(n)) names.push(n);
  }
  const rseries = [{ label: "bound", values: counted.map((w) => num(w.counterfactual.regret.bound_usd)) }];
  for (const n of names) {
    rseries.push({ label: n, values: counted.map((w) => num((w.counterfactual.regret.cumulative_loss_usd || {})[n])) });
  }
  drawChart("chart-regret", counted.map(waveTime), rseries, { time: true, xLabel: "wave end (UTC)" });
}

function renderWaveDetail(waves) {
  const sec = document.getElementById("wave-detail");
  const m = /^#wave\/(.+)$/.exec(location.hash);
  if (!m) { sec.hidden = true; return; }
  const w = waves.find((x) => String(x.wave_id) === decodeURIComponent(m[1]));
  sec.hidden = false;
  document.getElementById("wave-detail-id").textContent = m[1];
  if (!w) {
    document.getElementById("wave-detail-summary").textContent = "not among the waves kept";
    drawChart("chart-wave", [], [], {});
    return;
  }
  const cf = w.counterfactual || {};
  const src = cf.capacity_source || {};
  document.getElementById("wave-detail-summary").textContent =
    "needed B " + money(w.needed_usd) + " · winners " + (cf.winners ?? "—") + " · capacity " +
    money(cf.capacity_usd) + " · capacities from the ledger: " + (src.ledger ?? "—") +
    ", from fills alone: " + (src.fill ?? "—");
  const sorted = cf.haircuts_sorted_usd || {};
  const names = Object.keys(sorted);
  const n = Math.max(0, ...names.map((k) => sorted[k].length));
  const xs = Array.from({ length: n }, (_, i) => i + 1);
  drawChart("chart-wave", xs, names.map((k) => ({
    label: k, values: xs.map((_, i) => (i < sorted[k].length ? sorted[k][i] : null)),
  })), { xLabel: "winner (largest haircut first)", integer: true });
  sec.scrollIntoView();
}

async function renderExposure() {
  const coinSel = document.getElementById("exposure-coin");
  let coins;
  try {
    coins = await getJson("api/exposure/coins");  // status.js
  } catch (e) {
    return;
  }
  const venue = Object.keys(coins)[0];
  if (!venue) return;
  if (coinSel.options.length === 0) {
    for (const c of coins[venue]) coinSel.appendChild(el("option", c));
  }
  if (!coinSel.value) return;
  const side = document.getElementById("exposure-side").value;
  const x = Number(document.getElementById("exposure-shortfall").value);
  const q = "api/exposure?venue=" + encodeURIComponent(venue) + "&coin=" + encodeURIComponent(coinSel.value) +
    "&side=" + side + "&limit=20" + (isFinite(x) && x >= 0 ? "&shortfall_usd=" + x : "");
  const doc = await getJson(q);
  const t = doc.totals;
  const wi = doc.what_if;
  document.getElementById("exposure-summary").textContent =
    venue + " " + doc.coin + " " + doc.side + ": " + t.positions + " positions, capacity " + money(t.capacity_usd) +
    " (first 10: " + money(t.top10_capacity_usd) + ")" +
    (wi ? " · shortfall " + money(wi.shortfall_usd) + " uncovered " + money(wi.uncovered_usd) : "") +
    " · order: " + doc.order.name;
  const rows = [];
  for (const a of doc.accounts) {
    const tr = el("tr");
    tr.className = "queue";
    tr.dataset.user = a.user;
    tr.appendChild(el("td", a.rank, "num"));
    tr.appendChild(el("td", a.user, "addr"));
    tr.appendChild(el("td", a.score === null ? "—" : a.score.toFixed(4), "num"));
    tr.appendChild(el("td", a.size, "num"));
    tr.appendChild(el("td", money(a.notional_usd), "num"));
    tr.appendChild(el("td", money(a.upnl_usd), "num"));
    tr.appendChild(el("td", a.leverage === null ? "—" : a.leverage.toFixed(2), "num"));
    tr.appendChild(el("td", money(a.production_take_usd), "num take"));
    rows.push(tr);
  }
  fill(document.querySelector("#queue tbody"), rows, 8);  // status.js
  const xs = doc.accounts.map((a) => a.rank);
  const series = [{ label: "production", values: doc.accounts.map((a) => num(a.production_take_usd)) }];
  const mechs = doc.accounts.length ? Object.keys(doc.accounts[0].take_usd || {}) : [];
  for (const m of mechs) series.push({ label: m, values: doc.accounts.map((a) => num(a.take_usd[m])) });
  series.push({ label: "capacity (uPnL)+", values: doc.accounts.map((a) => num(a.capacity_usd)) });
  drawChart("chart-exposure", xs, series, { xLabel: "queue rank", integer: true });
}

function linkWaveRows() {
  for (const tr of document.querySelectorAll("#waves tr.wave")) {
    const td = tr.firstElementChild;
    if (!td || td.querySelector("a")) continue;
    const a = el("a", td.textContent);
    a.href = "#wave/" + encodeURIComponent(tr.dataset.waveId);
    td.replaceChildren(a);
  }
}

async function refreshCharts() {
  try {
    const st = await getJson("api/status");
    const data = await getJson("api/waves?limit=200");
    renderWaveCharts(data.waves, st.horizons_ms);
    renderWaveDetail(data.waves);
    linkWaveRows();
    await renderExposure();
    document.body.dataset.charts = "1";
  } catch (e) {
    window.adlmonErrors.push(String(e.message || e));
    document.body.dataset.errors = String(window.adlmonErrors.length);
    document.body.dataset.charts = "error";
  }
}

document.getElementById("exposure-form").addEventListener("submit", (e) => {
  e.preventDefault();
  renderExposure();
});
document.getElementById("wave-detail-close").addEventListener("click", (e) => {
  e.preventDefault();
  history.replaceState(null, "", location.pathname + location.search);
  document.getElementById("wave-detail").hidden = true;
});
window.addEventListener("hashchange", refreshCharts);
new MutationObserver(linkWaveRows).observe(document.querySelector("#waves tbody"), { childList: true });
refreshCharts();
setInterval(refreshCharts, 10000);
