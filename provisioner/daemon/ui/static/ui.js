// The dashboard's only script: live rows from /events, filters, confirmations, actions.
// Plain DOM (no library); text is always set with textContent, never parsed as HTML.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const page = document.body.dataset.page;
const selected = new Set();
let lastNodes = [];

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function ago(iso) {
  if (!iso) return "";
  let s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60); s %= 60;
  if (m < 60) return m + "m " + s + "s";
  return Math.floor(m / 60) + "h " + (m % 60) + "m";
}

function tickSince() {
  for (const td of document.querySelectorAll("[data-since]")) td.textContent = ago(td.dataset.since);
}

function setStateClass(node, cls) {
  for (const c of [...node.classList]) if (c.startsWith("state-")) node.classList.remove(c);
  node.classList.add("state-" + cls);
}

// ---- nodes table -------------------------------------------------------------
function filters() {
  const f = {};
  for (const s of document.querySelectorAll("#filters select")) f[s.name] = s.value;
  return f;
}

function fillRow(tr, r) {
  // cells are updated in place, so a row being clicked or read is never replaced
  if (!tr.cells.length) {
    const pick = el("input"); pick.type = "checkbox"; pick.className = "pick"; pick.value = r.name;
    const c0 = el("td"); c0.append(pick);
    const a = el("a", r.name); a.href = "/nodes/" + encodeURIComponent(r.name);
    const c1 = el("td"); c1.append(a);
    tr.append(c0, c1, el("td"), el("td"), el("td"), el("td", "", "state"), el("td"),
              el("td", "", "since"), el("td", "", "last"));
  }
  tr.dataset.node = r.name;
  setStateClass(tr, r.class);
  const c = tr.cells;
  c[0].firstChild.checked = selected.has(r.name);
  c[2].textContent = r.role;
  c[3].textContent = r.rack + (r.position ? " U" + r.position : "");
  c[4].textContent = r.ip;
  c[5].textContent = r.state;
  if (r.reason) c[5].append(el("div", r.reason, "reason"));
  c[6].textContent = r.step;
  c[7].dataset.since = r.since || "";
  c[7].textContent = ago(r.since);
  c[8].textContent = r.last_event;
}

function renderNodes() {
  const tbody = document.querySelector("#nodes tbody");
  const f = filters();
  const rows = lastNodes.filter(r => Object.entries(f).every(([k, v]) => !v || r[k] === v));
  const shown = [...tbody.rows];
  if (shown.length === rows.length && shown.every((tr, i) => tr.dataset.node === rows[i].name)) {
    rows.forEach((r, i) => fillRow(shown[i], r));
    return;
  }
  tbody.replaceChildren(...rows.map(r => { const tr = el("tr"); fillRow(tr, r); return tr; }));
}

function countSelected() {
  const c = document.getElementById("selected-count");
  if (c) c.textContent = selected.size;
}

// ---- racks and node page -----------------------------------------------------
function updateMarked(nodes) {
  const byName = new Map(nodes.map(r => [r.name, r]));
  for (const e of document.querySelectorAll(".slot[data-node], .node-head[data-node]")) {
    const r = byName.get(e.dataset.node);
    if (!r) continue;
    const target = e.classList.contains("node-head") ? e.querySelector(".badge") : e;
    setStateClass(target, r.class);
    e.querySelector(".state").textContent = r.state;
    if (e.classList.contains("node-head")) {
      const reason = e.querySelector(".reason");
      reason.textContent = r.reason; reason.hidden = !r.reason;
      e.querySelector(".step").textContent = r.step || "—";
      const key = r.state + "|" + r.last_event;
      if (e.dataset.key && e.dataset.key !== key) refreshEvents(r.name);
      e.dataset.key = key;
    }
  }
}

async function refreshEvents(name) {
  const resp = await fetch("/nodes/" + encodeURIComponent(name) + "/events.json");
  if (!resp.ok) return;
  const data = await resp.json();
  const tbody = document.querySelector("#events tbody");
  tbody.replaceChildren(...data.events.map(ev => {
    const tr = el("tr");
    const msg = el("td"); msg.append(el("pre", ev.message));
    tr.append(el("td", ev.at_text, "at"), el("td", ev.kind), el("td", ev.event), el("td", ev.change), msg, el("td", ev.actor));
    return tr;
  }));
}

// ---- jobs --------------------------------------------------------------------
function renderJobs(jobs) {
  const tbody = document.querySelector("#jobs tbody");
  if (!jobs.length) return;
  tbody.replaceChildren(...jobs.map(j => {
    const tr = el("tr"); tr.dataset.job = j.id;
    const done = j.results.length;
    const progress = j.running ? `running: ${done} of ${j.nodes.length} done` : (j.error ? "error: " + j.error : "finished");
    const res = el("td");
    for (const r of j.results) res.append(el("div", `${r.name}: ${r.state}${r.reason ? " (" + r.reason + ")" : ""}`));
    tr.append(el("td", j.started_at.replace("T", " ").replace("+00:00", "")), el("td", j.kind),
              el("td", j.nodes.join(", ")), el("td", progress, j.running ? "running" : ""), res);
    return tr;
  }));
}

// ---- live stream -------------------------------------------------------------
function connect() {
  const live = document.getElementById("live");
  const source = new EventSource("/events");
  source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  source.onerror = () => { live.textContent = "reconnecting…"; live.className = "live"; };
  source.onmessage = (msg) => {
    const data = JSON.parse(msg.data);
    lastNodes = data.nodes;
    if (page === "nodes") renderNodes(); else updateMarked(data.nodes);
    renderJobs(data.jobs);
  };
}

// ---- actions -----------------------------------------------------------------
async function post(url, body) {
  const resp = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
    body: JSON.stringify(body),
  });
  let data = {};
  try { data = await resp.json(); } catch (e) { data = {error: resp.statusText}; }
  return {ok: resp.ok, status: resp.status, data};
}

async function confirmAction(action, nodes) {
  const dialog = document.getElementById("confirm");
  const ok = document.getElementById("confirm-ok");
  const refusal = document.getElementById("confirm-refusal");
  const error = document.getElementById("confirm-error");
  document.getElementById("confirm-title").textContent = action.replace("-", " ") + "?";
  document.getElementById("confirm-nodes").textContent = "Nodes: " + nodes.join(", ");
  const quorum = document.getElementById("confirm-quorum");
  quorum.textContent = "Asking the quorum guard…";
  refusal.hidden = true; error.hidden = true; ok.disabled = true;
  dialog.showModal();
  const check = await post("/actions/check", {action, nodes});
  if (!check.ok) {
    quorum.textContent = ""; error.textContent = check.data.error; error.hidden = false;
    return;
  }
  quorum.textContent = check.data.quorum ? "Quorum guard: " + check.data.quorum : "";
  if (!check.data.allowed) {
    refusal.textContent = "Refused by the quorum guard: " + check.data.refusal;
    refusal.hidden = false;
    return;
  }
  ok.disabled = false;
  ok.onclick = async (ev) => {
    ev.preventDefault();
    ok.disabled = true;
    const started = await post("/actions", {action, nodes});
    if (!started.ok) { error.textContent = started.data.error; error.hidden = false; return; }
    dialog.close();
  };
}

function onClick(ev) {
  const button = ev.target.closest("button[data-action]");
  if (!button) return;
  const holder = button.closest("[data-nodes]");
  const nodes = holder ? holder.dataset.nodes.split(" ") : [...selected];
  if (!nodes.length) { alert("Select nodes first."); return; }
  confirmAction(button.dataset.action, nodes);
}

function onChange(ev) {
  const t = ev.target;
  if (t.classList.contains("pick")) {
    if (t.checked) selected.add(t.value); else selected.delete(t.value);
    countSelected();
  } else if (t.id === "select-all") {
    for (const p of document.querySelectorAll("#nodes .pick")) {
      p.checked = t.checked;
      if (t.checked) selected.add(p.value); else selected.delete(p.value);
    }
    countSelected();
  } else if (t.closest("#filters")) {
    const params = new URLSearchParams(Object.entries(filters()).filter(([, v]) => v));
    history.replaceState(null, "", "/nodes" + (params.size ? "?" + params : ""));
    renderNodes();
  }
}

async function askPower() {
  const span = document.getElementById("power");
  if (!span) return;
  const resp = await fetch("/nodes/" + encodeURIComponent(span.dataset.node) + "/power");
  const data = await resp.json();
  span.textContent = data.power || ("unknown: " + data.error);
}

document.addEventListener("click", onClick);
document.addEventListener("change", onChange);
document.getElementById("confirm-cancel").addEventListener("click", () => document.getElementById("confirm").close());
setInterval(tickSince, 1000);
tickSince();
askPower();
connect();
