// The risk desk: log in with a TOTP code, then follow the WebSocket's `risk` channel
// (docs/websocket.md). No framework, no build step, nothing loaded from elsewhere: the
// charts are inline SVG drawn here.
"use strict";

const EXPONENT = { JPY: 0, KRW: 0, BTC: 8, ETH: 8, USDT: 2 };
const TOP = 20; // accounts shown
const ALERTS = 100; // alerts kept

const desk = {
  token: null, ws: null, cursor: null, retry: 0,
  exposure: {}, currencies: {}, house: {}, accounts: new Map(), alerts: [],
};

const $ = (sel) => document.querySelector(sel);

function major(minor, currency) {
  if (minor === null || minor === undefined || minor === "") return "–";
  const exp = EXPONENT[currency] ?? 2;
  const value = Number(minor) / 10 ** exp;
  return value.toLocaleString("en-US", { minimumFractionDigits: exp, maximumFractionDigits: exp });
}

function setStatus(text, cls) {
  const el = $("#status");
  el.textContent = text;
  el.className = "status " + (cls || "");
}

async function login(event) {
  event.preventDefault();
  $("#login-error").textContent = "";
  const body = {
    username: $("#username").value, password: $("#password").value,
    totp: $("#totp").value.trim(), device_id: "risk-dashboard",
  };
  let res;
  try {
    res = await fetch("/v1/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
  } catch (err) {
    $("#login-error").textContent = "the server cannot be reached";
    return;
  }
  const out = await res.json();
  if (!res.ok) {
    $("#login-error").textContent = out.detail || out.code || "refused";
    return;
  }
  desk.token = out.token;
  $("#login-panel").hidden = true;
  $("#desk").hidden = false;
  connect();
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/v1/ws`);
  desk.ws = ws;
  setStatus("connecting");
  ws.onopen = () => ws.send(JSON.stringify({ op: "auth", token: desk.token }));
  ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
  ws.onclose = (ev) => {
    if (ev.code === 4001) { // the session ended: sign in again
      setStatus("signed out", "down");
      $("#desk").hidden = true;
      $("#login-panel").hidden = false;
      $("#login-error").textContent = "the session ended: sign in again";
      return;
    }
    setStatus(`reconnecting (${ev.code})`, "down");
    desk.retry = Math.min(desk.retry + 1, 5);
    setTimeout(connect, 500 * desk.retry);
  };
}

function onMessage(m) {
  if (m.type === "welcome") {
    if (!m.channels.includes("risk")) {
      setStatus("no access to the risk channel", "down");
      return;
    }
    const sub = { op: "subscribe", channel: "risk" };
    if (desk.cursor) sub.since = desk.cursor; // resume: what was missed, or a snapshot
    desk.ws.send(JSON.stringify(sub));
    return;
  }
  if (m.type === "error") { setStatus(m.code, "down"); return; }
  if (m.channel !== "risk") return;
  if (m.cursor) desk.cursor = m.cursor;
  if (m.type === "snapshot") {
    desk.retry = 0;
    desk.exposure = m.exposure; desk.currencies = m.currencies; desk.house = m.house;
    desk.accounts = new Map(m.accounts.map((a) => [String(a.account_id), a]));
    desk.alerts = m.alerts.slice().reverse();
    setStatus("live", "live");
  } else if (m.type === "resumed") {
    desk.retry = 0;
    setStatus("live", "live");
    return;
  } else if (m.type === "update") {
    applyUpdate(m);
  }
  schedule();
}

function applyUpdate(m) {
  switch (m.kind) {
    case "exposure": desk.exposure[m.key] = m.data; break;
    case "currency": desk.currencies[m.key] = m.data; break;
    case "house": desk.house = m.data; break;
    case "account":
      if (m.data.margin_level === null) desk.accounts.delete(m.key);
      else desk.accounts.set(m.key, m.data);
      break;
    case "alert":
      desk.alerts.unshift(m.data);
      desk.alerts.length = Math.min(desk.alerts.length, ALERTS);
      break;
  }
}

let pending = false;
function schedule() { // one render per frame, whatever the number of messages
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; render(); });
}

function render() {
  const ccy = desk.house.house_currency || "USD";
  $("#gross").textContent = desk.house.value ? `${major(desk.house.value, ccy)} ${ccy}` : "–";
  $("#symbols-breached").textContent = desk.house.symbols_breached || "none";
  $("#currencies-breached").textContent = desk.house.currencies_breached || "none";
  const rows = Object.values(desk.exposure).map((r) => ({ key: r.symbol, value: r.value, breached: r.breached }));
  $("#chart-symbols").replaceChildren(barChart(rows, ccy, "symbol"));
  const crow = Object.values(desk.currencies).map((r) => ({ key: r.currency, value: r.value, breached: r.breached }));
  $("#chart-currencies").replaceChildren(barChart(crow, ccy, "currency"));
  renderAccounts();
  renderAlerts();
}

const SVG = "http://www.w3.org/2000/svg";
function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Horizontal bars around a zero axis: long house exposure right, short left.
function barChart(rows, ccy, what) {
  rows.sort((a, b) => Math.abs(Number(b.value || 0)) - Math.abs(Number(a.value || 0)));
  const rowH = 22, labelW = 80, valueW = 120, width = 520;
  const height = Math.max(rowH, rows.length * rowH) + 4;
  const svg = el("svg", { width: "100%", viewBox: `0 0 ${width} ${height}`, role: "img" });
  const max = Math.max(1, ...rows.map((r) => Math.abs(Number(r.value || 0))));
  const plotW = width - labelW - valueW, mid = labelW + plotW / 2;
  svg.append(el("line", { x1: mid, x2: mid, y1: 0, y2: height, stroke: "#999" }));
  rows.forEach((r, i) => {
    const y = i * rowH + 2, v = Number(r.value || 0);
    const w = (Math.abs(v) / max) * (plotW / 2);
    const g = el("g", { ["data-" + what]: r.key, class: "row" });
    g.append(el("text", { x: 0, y: y + 14 }, r.key));
    const cls = r.breached ? "bar-breached" : v >= 0 ? "bar-long" : "bar-short";
    g.append(el("rect", { x: v >= 0 ? mid : mid - w, y: y + 3, width: Math.max(w, 1), height: rowH - 8, class: cls }));
    g.append(el("text", { x: width - 4, y: y + 14, "text-anchor": "end", class: "value" },
      r.value === null ? "no quote" : major(r.value, ccy)));
    svg.append(g);
  });
  return svg;
}

function renderAccounts() {
  const list = [...desk.accounts.values()]
    .filter((a) => a.margin_level !== null && a.margin_level !== undefined)
    .sort((a, b) => Number(a.margin_level) - Number(b.margin_level))
    .slice(0, TOP);
  const body = $("#accounts tbody");
  body.replaceChildren(...list.map((a) => {
    const tr = document.createElement("tr");
    tr.dataset.account = a.account_id;
    tr.className = a.margin_state;
    const cells = [
      [String(a.account_id), "id"], [a.currency, "ccy"], [major(a.equity, a.currency), "equity"],
      [major(a.unrealized, a.currency), "pnl"], [major(a.used_margin, a.currency), "margin"],
      [`${Number(a.margin_level).toFixed(2)} %`, "level"], [a.margin_state.replace("_", " "), "state"],
    ];
    for (const [text, cls] of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      td.className = cls;
      tr.append(td);
    }
    return tr;
  }));
  // Open PnL of the accounts shown, per currency (they are not converted here).
  const sums = {};
  for (const a of list) sums[a.currency] = (sums[a.currency] || 0) + Number(a.unrealized || 0);
  const parts = Object.entries(sums).map(([c, v]) => `${major(v, c)} ${c}`);
  $("#open-pnl").textContent = parts.length ? parts.join(" · ") : "–";
}

function renderAlerts() {
  $("#alerts").replaceChildren(...desk.alerts.map((a) => {
    const li = document.createElement("li");
    li.className = a.kind;
    const kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = a.kind.replaceAll("_", " ");
    const when = new Date(Math.floor(a.ts_ns / 1e6)).toISOString().slice(11, 19);
    li.append(kind, `${when} ${a.message}`);
    return li;
  }));
}

$("#login").addEventListener("submit", login);
