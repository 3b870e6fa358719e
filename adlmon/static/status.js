// adlmon status page: reads api/status and api/waves (same origin, relative URLs
// so a path prefix behind a proxy works). Text only, never innerHTML.
"use strict";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function usd(x) {
  if (x === null || x === undefined || !isFinite(x)) return "—";
  const sign = x < 0 ? "-" : "";
  const a = Math.abs(x);
  if (a >= 1e9) return sign + "$" + (a / 1e9).toFixed(2) + "B";
  if (a >= 1e6) return sign + "$" + (a / 1e6).toFixed(2) + "M";
  if (a >= 1e3) return sign + "$" + (a / 1e3).toFixed(1) + "k";
  return sign + "$" + a.toFixed(2);
}

function age(s) {
  if (s === null || s === undefined) return "never";
  if (s < 120) return s.toFixed(1) + " s ago";
  if (s < 7200) return (s / 60).toFixed(1) + " min ago";
  return (s / 3600).toFixed(1) + " h ago";
}

function endMs(w) {
  for (const k of ["t_end_ms", "end_ms", "end_time_ms", "time_end_ms"]) {
    if (typeof w[k] === "number") return w[k];
  }
  return null;
}

function count(x) {
  if (Array.isArray(x)) return x.length;
  return typeof x === "number" ? x : null;
}

// The optimum at B; "unknown" (not 0) when the known capacity could not carry B.
function optimalOf(w) {
  const cf = w.counterfactual;
  if (!cf || !cf.mechanisms) return { name: null, total: null, unknown: false };
  const name = cf.optimal_mechanism || null;
  if (cf.optimal && cf.optimal.status === "unknown") {
    return { name: name, total: null, unknown: true, reason: cf.optimal.reason || "" };
  }
  const m = name ? cf.mechanisms[name] : null;
  if (!m) return { name: name, total: null, unknown: false };
  const post = m.ex_post || m;
  return { name: name, total: typeof post.total_usd === "number" ? post.total_usd : null,
           unknown: false };
}

function fill(tbody, rows, cols) {
  tbody.replaceChildren();
  if (rows.length === 0) {
    const tr = el("tr");
    const td = el("td", "none yet", "muted");
    td.colSpan = cols;
    tr.appendChild(td);
    tbody.appendChild(tr);
    return;
  }
  for (const r of rows) tbody.appendChild(r);
}

function renderStatus(st) {
  const ready = st.ready ? "ready" : "not ready";
  let line = "version " + st.version + " · " + st.mode + " · up " +
    age(st.uptime_s).replace(" ago", "") + " · " + ready + " · " + st.waves_kept + " waves kept";
  if (st.demo) line += " · " + (st.demo.finished ? "demo finished: " : "demo playing: ") + st.demo.detail;
  document.getElementById("summary").textContent = line;
  // Why not ready: one line per source with its short reason (the error text is in
  // api/status as last_error and, once, in the log).
  const reasons = document.getElementById("reasons");
  reasons.replaceChildren();
  if (!st.ready) for (const r of st.reasons || []) reasons.appendChild(el("li", r));
  const rows = [];
  for (const [name, s] of Object.entries(st.sources || {}).sort()) {
    const tr = el("tr");
    tr.appendChild(el("td", name));
    tr.appendChild(el("td", s.healthy ? "healthy" : "unhealthy", s.healthy ? "ok" : "bad"));
    tr.appendChild(el("td", s.connected ? "yes" : "no", s.connected ? "" : "warn"));
    tr.appendChild(el("td", age(s.last_message_age_s)));
    tr.appendChild(el("td", s.coverage || "—"));
    rows.push(tr);
  }
  fill(document.querySelector("#sources tbody"), rows, 5);
  return st;
}

function renderWaves(data, horizons) {
  const h = String((horizons && horizons.length) ? horizons[0] : 0);
  document.getElementById("h-head").textContent = "Production H(" + h + " ms)";
  document.getElementById("wave-count").textContent = "(" + data.count + " of " + data.kept + ")";
  const rows = [];
  const notes = [];
  for (const w of data.waves) {
    const tr = el("tr");
    tr.className = "wave";
    tr.dataset.waveId = w.wave_id;
    const ms = endMs(w);
    const prod = w.production_haircut_usd ? w.production_haircut_usd[h] : null;
    const opt = optimalOf(w);
    const excess = (typeof prod === "number" && opt.total !== null) ? prod - opt.total : null;
    if (opt.unknown) notes.push("Wave " + w.wave_id + ": optimum unknown: " + opt.reason);
    tr.appendChild(el("td", w.wave_id));
    tr.appendChild(el("td", w.venue));
    tr.appendChild(el("td", ms === null ? "—" : new Date(ms).toISOString().replace("T", " ").replace("Z", "")));
    tr.appendChild(el("td", Array.isArray(w.coins) ? w.coins.join(", ") : "—"));
    tr.appendChild(el("td", count(w.adl_fills) ?? "—", "num"));
    tr.appendChild(el("td", count(w.accounts) ?? "—", "num"));
    const need = el("td", (w.needed_complete === false ? "≥ " : "") + usd(w.needed_usd), "num");
    if (w.needed_complete === false) {
      need.title = w.needed_missing_mark_fills + " ADL fills without markPx: B is a lower bound";
    }
    tr.appendChild(need);
    tr.appendChild(el("td", usd(prod), "num production"));
    const o = el("td", opt.unknown ? "unknown" : usd(opt.total),
                 "num optimal" + (opt.unknown ? " unknown" : ""));
    if (opt.name) o.title = opt.unknown ? opt.name + ": " + opt.reason : opt.name;
    tr.appendChild(o);
    tr.appendChild(el("td", opt.unknown ? "unknown" : usd(excess),
                      "num excess" + (opt.unknown ? " unknown" : excess > 0 ? " bad" : "")));
    tr.appendChild(el("td", w.deficit_usd === null || w.deficit_usd === undefined ? "unknown" : usd(w.deficit_usd), "num"));
    rows.push(tr);
  }
  fill(document.querySelector("#waves tbody"), rows, 11);
  const list = document.getElementById("wave-notes");
  list.replaceChildren(...notes.map((n) => el("li", n)));
}

async function getJson(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(url + ": HTTP " + r.status);
  return r.json();
}

async function refresh() {
  try {
    const st = renderStatus(await getJson("api/status"));
    renderWaves(await getJson("api/waves?limit=20"), st.horizons_ms);
    document.body.dataset.loaded = "1";
  } catch (e) {
    document.getElementById("summary").textContent = "error: " + e.message;
    document.body.dataset.loaded = "error";
  }
}

refresh();
setInterval(refresh, 10000);
