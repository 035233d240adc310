// The web dashboard: reads the API's own endpoints with the admin token and draws them.
// The token lives in this tab's session storage only (never in a URL, a cookie or the
// page); every value from the API reaches the page as text, never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "pgcapacity.adminToken";
  const TABLES_EVERY_MS = 1000; // pools, codes and an open code's claims
  const CHARTS_EVERY_MS = 2000; // the event log's series and this process's latency
  const PAGE = 100;
  const COLOURS = {
    claimed: "#2f6fdb", released: "#2e8b57", expired: "#d68910", revoked: "#c0392b",
    units: "#6a4fb3", p50: "#2f6fdb", p99: "#c0392b", errors: "#5f6b7a",
  };
  const REFUSAL_COLOURS = ["#c0392b", "#d68910", "#8e44ad", "#16a085", "#7f8c8d", "#2c3e50"];

  const $ = (id) => document.getElementById(id);
  const view = { search: "", scope: "", window: "1h", detail: null, refusals: [], pools: [] };
  const charts = {};
  let token = sessionStorage.getItem(TOKEN_KEY);
  let running = false;

  // --- the API -----------------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `the API answered ${status}`);
      this.status = status;
      this.code = error.code;
      this.hint = error.details && error.details.hint;
    }
  }

  async function api(path, { method = "GET", body } = {}) {
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, cache: "no-store", credentials: "omit",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiFailure(response.status, data);
    return data;
  }

  function describe(err) {
    return err instanceof ApiFailure
      ? `${err.code || err.status}: ${err.message}${err.hint ? ` (${err.hint})` : ""}`
      : `the API cannot be reached (${err.message})`;
  }

  // --- signing in and out --------------------------------------------------------------

  async function adminRole(candidate) {
    const response = await fetch("/v1/whoami", {
      headers: { Authorization: `Bearer ${candidate}` }, cache: "no-store", credentials: "omit",
    });
    if (response.status === 401) return "That token is not valid.";
    if (!response.ok) return `The API answered ${response.status}; try again.`;
    const who = await response.json();
    if (!who.can_admin) return "That is a client token: the dashboard needs the admin token.";
    return null;
  }

  function showLogin(message) {
    running = false;
    $("app").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("token").focus();
  }

  async function onLogin(event) {
    event.preventDefault();
    const input = $("token");
    const candidate = input.value.trim();
    input.value = ""; // the token leaves the page's DOM at once
    const problem = await adminRole(candidate).catch((err) => describe(err));
    if (problem) return showLogin(problem);
    token = candidate;
    sessionStorage.setItem(TOKEN_KEY, token);
    start();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    showLogin(message);
  }

  // --- formatting ----------------------------------------------------------------------

  const number = new Intl.NumberFormat();
  const timeOf = (iso) => (iso ? new Date(iso).toLocaleString() : "never");
  const hhmm = (date) => date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  function ago(iso) {
    const seconds = Math.max(0, Math.round((Date.now() - new Date(iso)) / 1000));
    if (seconds < 90) return `${seconds} s ago`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
    return `${Math.round(seconds / 3600)} h ago`;
  }

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function meter(used, total) {
    const m = document.createElement("meter");
    m.min = 0;
    m.max = Math.max(total, 1);
    m.value = used;
    m.low = 0.7 * m.max;
    m.high = 0.9 * m.max;
    m.optimum = 0;
    m.title = `${used} of ${total}`;
    return m;
  }

  function codeState(status) {
    if (status.reason === "CODE_FULL") return ["full", "state-full"];
    if (status.reason === "CODE_INACTIVE") return ["inactive", "state-off"];
    if (status.reason === "CODE_EXPIRED") return ["expired", "state-off"];
    if (status.max_uses > 0 && status.usage_count >= 0.9 * status.max_uses) return ["near capacity", "state-near"];
    return ["open", ""];
  }

  // --- tables --------------------------------------------------------------------------

  function renderPools(dashboard) {
    view.pools = dashboard.pools;
    const body = $("pools").tBodies[0];
    body.replaceChildren();
    for (const p of dashboard.pools) {
      const row = body.insertRow();
      cell(row, p.pool);
      cell(row, `${number.format(p.active_codes)} active of ${number.format(p.codes)}`);
      const units = cell(row, ` ${number.format(p.units_used)} / ${number.format(p.units_total)}`);
      units.prepend(meter(p.units_used, p.units_total));
      cell(row, number.format(p.near_capacity_codes), "num");
      cell(row, number.format(p.full_codes), "num");
      cell(row, number.format(p.active_claims), "num");
      cell(row, number.format(p.claims_last_hour), "num");
      cell(row, number.format(p.expiries_last_hour), "num");
      const refused = view.refusals
        .filter((r) => r.error === "HOLDER_LIMIT_EXCEEDED" && r.pool === p.pool)
        .reduce((sum, r) => sum + r.count, 0);
      cell(row, number.format(refused), "num");
    }
    $("pools-note").textContent = dashboard.pools.length
      ? `Summary refreshed ${ago(dashboard.refreshed_at)}.`
      : "No codes yet: create some with POST /v1/admin/codes or capacity.upsert_codes().";
    updateScopes(dashboard.pools.map((p) => p.pool));
  }

  function updateScopes(pools) {
    const select = $("scope");
    const wanted = ["", ...pools.map((p) => `pool:${p}`)];
    const have = [...select.options].map((o) => o.value);
    if (wanted.join("\n") === have.join("\n")) return;
    const keep = select.value;
    select.replaceChildren(...wanted.map((value) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = value ? `pool ${value.slice(5)}` : "every code";
      return option;
    }));
    select.value = wanted.includes(keep) ? keep : "";
  }

  function renderCodes(page) {
    const body = $("codes").tBodies[0];
    body.replaceChildren();
    for (const status of page.codes) {
      const row = body.insertRow();
      row.dataset.code = status.code;
      row.tabIndex = 0;
      cell(row, status.code);
      cell(row, status.pool);
      row.insertCell().append(meter(status.usage_count, status.max_uses));
      cell(row, number.format(status.usage_count), "num");
      cell(row, number.format(status.max_uses), "num");
      cell(row, timeOf(status.expires_at));
      const [text, className] = codeState(status);
      cell(row, text, className);
    }
    const shown = page.codes.length;
    $("codes-note").textContent = page.next
      ? `The first ${shown} codes in code order: search to narrow them.`
      : `${shown} code${shown === 1 ? "" : "s"}.`;
  }

  async function renderDetail() {
    const code = view.detail;
    if (!code) return;
    const path = encodeURIComponent(code);
    const [status, claims] = await Promise.all([
      api(`/v1/codes/${path}`), api(`/v1/codes/${path}/claims?limit=${PAGE}`),
    ]);
    if (view.detail !== code) return;
    const [state] = codeState(status);
    $("detail-summary").textContent =
      `Pool ${status.pool} · ${status.usage_count} of ${status.max_uses} in use · ${state} · expires ${timeOf(status.expires_at)}`;
    const input = $("capacity-input");
    if (document.activeElement !== input) input.value = status.max_uses;
    const body = $("claims").tBodies[0];
    body.replaceChildren();
    for (const claim of claims.claims) {
      const row = body.insertRow();
      cell(row, claim.holder);
      cell(row, `#${claim.claim_id}`);
      cell(row, timeOf(claim.claimed_at));
      cell(row, ago(claim.last_seen_at)).title = timeOf(claim.last_seen_at);
      const release = document.createElement("button");
      release.type = "button";
      release.className = "small quiet";
      release.textContent = "Release";
      release.addEventListener("click", () => releaseHolder(code, claim.holder));
      row.insertCell().append(release);
    }
    if (!$("claims-note").dataset.sticky) {
      $("claims-note").textContent = claims.claims.length
        ? (claims.next ? `The first ${PAGE} active claims.` : "")
        : "No active claim.";
    }
  }

  // --- charts --------------------------------------------------------------------------

  function lineChart(canvasId, datasets, extraScales = {}) {
    return new Chart($(canvasId), {
      type: "line",
      data: { labels: [], datasets: datasets.map((d) => ({
        label: d.label, data: [], borderColor: d.colour, backgroundColor: d.colour,
        yAxisID: d.axis || "y", pointRadius: d.points ? 3 : 0, borderWidth: 2, tension: 0.2, spanGaps: true,
      })) },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: { x: { ticks: { maxTicksLimit: 8 } }, y: { beginAtZero: true, ticks: { precision: 0 } }, ...extraScales },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      },
    });
  }

  function makeCharts() {
    charts.events = lineChart("chart-events", [
      { label: "claimed", colour: COLOURS.claimed }, { label: "released", colour: COLOURS.released },
      { label: "expired", colour: COLOURS.expired }, { label: "revoked", colour: COLOURS.revoked },
    ]);
    charts.units = lineChart("chart-units", [{ label: "units in use", colour: COLOURS.units }]);
    charts.latency = lineChart("chart-latency", [
      // Minutes without requests have no point: draw the points, not only the lines.
      { label: "p50", colour: COLOURS.p50, points: true }, { label: "p99", colour: COLOURS.p99, points: true },
    ]);
    charts.refusals = lineChart("chart-refusals", [{ label: "error rate %", colour: COLOURS.errors, axis: "rate", points: true }], {
      rate: { position: "right", beginAtZero: true, suggestedMax: 5, grid: { drawOnChartArea: false } },
    });
  }

  function activityPath(scope) {
    const query = new URLSearchParams({ window: view.window });
    if (scope.startsWith("pool:")) query.set("pool", scope.slice(5));
    if (scope.startsWith("code:")) query.set("code", scope.slice(5));
    return `/v1/activity?${query}`;
  }

  function fill(chart, labels, series) {
    chart.data.labels = labels;
    series.forEach((values, i) => { chart.data.datasets[i].data = values; });
    chart.update("none");
  }

  function renderActivity(activity) {
    const labels = activity.buckets.map((b) => hhmm(new Date(b.bucket_start)));
    fill(charts.events, labels, ["claimed", "released", "expired", "revoked"].map(
      (kind) => activity.buckets.map((b) => b[kind])));
    fill(charts.units, labels, [activity.buckets.map((b) => b.units_in_use)]);
  }

  function renderPerformance(history) {
    view.refusals = history.refusals;
    const points = history.operations.claimCode || [];
    // One slot a minute over the last hour; minutes without requests stay empty.
    const now = Math.floor(Date.now() / 60000);
    const minutes = Array.from({ length: 60 }, (_, i) => now - 59 + i);
    const byMinute = new Map(points.map((p) => [Math.floor(p.at / 60), p]));
    const labels = minutes.map((m) => hhmm(new Date(m * 60000)));
    const at = (m, f) => (byMinute.has(m) ? f(byMinute.get(m)) : null);
    fill(charts.latency, labels, [minutes.map((m) => at(m, (p) => p.p50_ms)), minutes.map((m) => at(m, (p) => p.p99_ms))]);

    const names = [...new Set(points.flatMap((p) => Object.keys(p.refusals)))].sort();
    const chart = charts.refusals;
    chart.data.datasets.length = 1 + names.length;
    names.forEach((name, i) => {
      const colour = REFUSAL_COLOURS[i % REFUSAL_COLOURS.length];
      chart.data.datasets[i + 1] = {
        label: name, data: minutes.map((m) => at(m, (p) => p.refusals[name] || 0)),
        borderColor: colour, backgroundColor: colour, yAxisID: "y", pointRadius: 3, borderWidth: 2, spanGaps: true,
      };
    });
    chart.data.labels = labels;
    chart.data.datasets[0].data = minutes.map((m) => at(m, (p) => (p.error_rate == null ? null : p.error_rate * 100)));
    chart.update("none");
  }

  async function renderDetailChart() {
    if (!view.detail) return;
    const activity = await api(activityPath(`code:${view.detail}`));
    if (!charts.code) charts.code = lineChart("chart-code", [{ label: "units in use", colour: COLOURS.units }]);
    fill(charts.code, activity.buckets.map((b) => hhmm(new Date(b.bucket_start))),
      [activity.buckets.map((b) => b.units_in_use)]);
  }

  // --- admin actions -------------------------------------------------------------------

  function confirmAction(text) {
    return new Promise((resolve) => {
      const dialog = $("confirm");
      $("confirm-text").textContent = text;
      dialog.returnValue = "";
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
      dialog.showModal();
    });
  }

  async function act(text, call, done) {
    if (!(await confirmAction(text))) return;
    const note = $("claims-note");
    try {
      note.textContent = done(await call());
      note.className = "note";
    } catch (err) {
      note.textContent = describe(err);
      note.className = "note error";
    }
    note.dataset.sticky = "1"; // the answer stays until the dialog is opened again
    await refreshTables();
  }

  function releaseHolder(code, holder) {
    return act(`Release ${holder}'s claim on ${code}?`,
      () => api(`/v1/admin/codes/${encodeURIComponent(code)}/release`, { method: "POST", body: { holder } }),
      (r) => (r.released ? `Released ${holder}'s claim; ${r.usage_count} in use.` : `${holder} held no claim.`));
  }

  function changeCapacity(event) {
    event.preventDefault();
    const code = view.detail;
    const maxUses = Number($("capacity-input").value);
    return act(`Set the capacity of ${code} to ${maxUses}?`,
      () => api("/v1/admin/codes", { method: "POST", body: { codes: [{ code, max_uses: maxUses }] } }),
      () => `Capacity of ${code} is now ${maxUses}.`);
  }

  function revoke() {
    const code = view.detail;
    return act(`Revoke ${code}? It ends every active claim on it and refuses new ones.`,
      () => api(`/v1/admin/codes/${encodeURIComponent(code)}/revoke`, { method: "POST" }),
      (r) => `Revoked ${code}: ${r.claims_ended} claim${r.claims_ended === 1 ? "" : "s"} ended.`);
  }

  function openDetail(code) {
    view.detail = code;
    $("detail-title").textContent = code;
    $("claims-note").textContent = "";
    delete $("claims-note").dataset.sticky;
    $("claims").tBodies[0].replaceChildren();
    const dialog = $("detail");
    if (!dialog.open) dialog.showModal();
    renderDetail().catch(showError);
    renderDetailChart().catch(showError);
  }

  // --- the live loop -------------------------------------------------------------------

  function showError(err) {
    if (err instanceof ApiFailure && err.status === 401) {
      signOut("The admin token is no longer accepted: sign in again.");
      return;
    }
    const banner = $("app-error");
    banner.textContent = describe(err);
    banner.hidden = false;
    $("live").textContent = "not updating";
    $("live").className = "live stale";
  }

  function updated() {
    $("app-error").hidden = true;
    $("live").textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    $("live").className = "live ok";
  }

  async function refreshTables() {
    const search = view.search ? `&search=${encodeURIComponent(view.search)}` : "";
    const [dashboard, page] = await Promise.all([api("/v1/dashboard"), api(`/v1/codes?limit=${PAGE}${search}`)]);
    renderPools(dashboard);
    renderCodes(page);
    await renderDetail();
  }

  async function refreshCharts() {
    const [activity, history] = await Promise.all([
      api(activityPath(view.scope)), api("/v1/performance/history"),
    ]);
    renderActivity(activity);
    renderPerformance(history);
    await renderDetailChart();
  }

  function every(ms, work) {
    const loop = async () => {
      if (!running) return;
      if (!document.hidden) {
        try {
          await work();
          updated();
        } catch (err) {
          showError(err);
        }
      }
      if (running) setTimeout(loop, ms);
    };
    loop();
  }

  function start() {
    $("login").hidden = true;
    $("app").hidden = false;
    if (running) return;
    running = true;
    every(TABLES_EVERY_MS, refreshTables);
    if (typeof Chart === "undefined") {
      $("charts-note").textContent =
        "Charts are unavailable: Chart.js is not installed beside the API (scripts/setup.sh installs it with npm).";
      return;
    }
    if (!charts.events) makeCharts();
    every(CHARTS_EVERY_MS, refreshCharts);
  }

  function wire() {
    $("login-form").addEventListener("submit", onLogin);
    $("logout").addEventListener("click", () => signOut("Signed out."));
    $("search").addEventListener("input", (e) => { view.search = e.target.value.trim(); refreshTables().catch(showError); });
    $("scope").addEventListener("change", (e) => { view.scope = e.target.value; refreshCharts().catch(showError); });
    $("window").addEventListener("change", (e) => { view.window = e.target.value; refreshCharts().catch(showError); });
    const rows = $("codes").tBodies[0];
    rows.addEventListener("click", (e) => { const row = e.target.closest("tr"); if (row) openDetail(row.dataset.code); });
    rows.addEventListener("keydown", (e) => {
      const row = e.target.closest("tr");
      if (row && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); openDetail(row.dataset.code); }
    });
    $("detail-close").addEventListener("click", () => $("detail").close());
    $("detail").addEventListener("close", () => { view.detail = null; });
    $("capacity-form").addEventListener("submit", changeCapacity);
    $("revoke").addEventListener("click", revoke);
  }

  async function boot() {
    wire();
    if (!token) return showLogin();
    const problem = await adminRole(token).catch((err) => describe(err));
    if (problem) return signOut(problem);
    start();
  }

  boot();
})();
