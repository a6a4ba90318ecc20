// imbroker console: the shell (sign-in, routing, the API helpers, small DOM
// helpers). Pages live in pages.js, the test chat in chat.js. No build step:
// plain browser JavaScript.
"use strict";

const Console = (() => {
  let session = null;       // {CSRFToken, Admin, SDKAppID, Expires}
  let timers = [];          // the current page's refresh timers
  let leaving = [];         // the current page's cleanups
  const pages = {};

  // --- DOM helpers -------------------------------------------------------
  // h("div.card#id", {attr}, children...): an element.
  function h(spec, attrs, ...kids) {
    const m = spec.match(/^([a-z0-9]+)((?:[.#][\w-]+)*)$/i);
    const el = document.createElement(m ? m[1] : "div");
    for (const part of (m ? m[2] : "").match(/[.#][\w-]+/g) || []) {
      if (part[0] === ".") el.classList.add(part.slice(1)); else el.id = part.slice(1);
    }
    if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) { kids.unshift(attrs); attrs = null; }
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      el.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }
  const $ = (sel, root) => (root || document).querySelector(sel);

  // field(label, name, attrs): a labelled input.
  function field(label, name, attrs) {
    const a = Object.assign({ name }, attrs || {});
    const tag = a.tag || "input"; delete a.tag;
    const opts = a.options; delete a.options;
    const input = h(tag, a, (opts || []).map((o) => h("option", { value: o[0] }, o[1])));
    return h("label", {}, label, input);
  }
  // form(fields, button, onsubmit): a form whose submit hands its values over.
  function form(id, kids, button, onsubmit) {
    const f = h("form.row#" + id, {}, kids, h("button", { type: "submit" }, button));
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      const vals = Object.fromEntries(new FormData(f).entries());
      const b = f.querySelector("button[type=submit]");
      b.disabled = true;
      try { await onsubmit(vals, f); } catch (err) { fail(err); } finally { b.disabled = false; }
    });
    return f;
  }
  // table(rows, columns): columns are [title, fn(row) or key, class].
  function table(rows, cols, onclick) {
    if (!rows || rows.length === 0) return h("p.muted", {}, "Nothing to show.");
    return h("div.table", {}, h("table", {},
      h("thead", {}, h("tr", {}, cols.map((c) => h("th", { class: c[2] }, c[0])))),
      h("tbody", {}, rows.map((r) => h("tr", { class: onclick ? "click" : null, onclick: onclick ? () => onclick(r) : null },
        cols.map((c) => h("td", { class: c[2] }, typeof c[1] === "function" ? c[1](r) : fmtVal(r[c[1]]))))))));
  }
  function fmtVal(v) {
    if (v === undefined || v === null) return "";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  const time = (s) => (s ? new Date(s * 1000).toLocaleString() : "");
  function bytes(n) {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }
  function duration(s) {
    const d = Math.floor(s / 86400), hh = Math.floor(s / 3600) % 24, mm = Math.floor(s / 60) % 60;
    return (d ? d + "d " : "") + (d || hh ? hh + "h " : "") + mm + "m " + (s % 60) + "s";
  }
  const list = (s) => String(s || "").split(/[\s,]+/).filter(Boolean);

  // --- notices -----------------------------------------------------------
  function notice(msg, ok) {
    const n = $("#notice");
    n.textContent = msg;
    n.className = "notice" + (ok ? " ok" : "");
    n.hidden = false;
    clearTimeout(notice.t);
    if (ok) notice.t = setTimeout(() => { n.hidden = true; }, 4000);
  }
  function fail(err) { notice(err && err.message ? err.message : String(err)); }
  function ok(msg) { notice(msg, true); }

  // --- API ---------------------------------------------------------------
  // api calls the console's own endpoints; a failure is thrown with the
  // server's message.
  async function api(path, opts) {
    opts = opts || {};
    const init = { method: opts.method || "GET", credentials: "same-origin", headers: {} };
    if (init.method !== "GET") {
      init.headers["X-CSRF-Token"] = session ? session.CSRFToken : "";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body || {});
    }
    let res;
    try { res = await fetch("/console/api/" + path, init); } catch (e) {
      throw new Error("The server cannot be reached (" + e.message + ")");
    }
    if (res.status === 401 && path !== "signin" && path !== "session") { showSignIn("Your session ended: sign in again."); throw new Error("Not signed in"); }
    let body = null;
    try { body = await res.json(); } catch (e) { /* not JSON: reported below */ }
    if (!res.ok) throw new Error((body && body.Error) || ("HTTP " + res.status + " from " + path));
    if (body === null) throw new Error("The server's answer to " + path + " is not JSON");
    return body;
  }
  // v4 runs a Tencent v4 REST API as the app admin; a FAIL is thrown as
  // "api: ErrorCode ErrorInfo".
  async function v4(name, body) {
    const r = await api("v4/" + name, { method: "POST", body });
    if (r.ActionStatus !== "OK" || (r.ErrorCode && r.ErrorCode !== 0)) {
      const e = new Error(name + " failed: " + r.ErrorCode + " " + (r.ErrorInfo || ""));
      e.reply = r;
      throw e;
    }
    return r;
  }

  // --- sign-in and routing -----------------------------------------------
  function showSignIn(msg) {
    session = null;
    stopPage();
    $("#app").hidden = true;
    $("#signin").hidden = false;
    const e = $("#signin-error");
    e.textContent = msg || ""; e.hidden = !msg;
    $("#signin-password").focus();
  }
  function showApp(s) {
    session = s;
    $("#signin").hidden = true;
    $("#app").hidden = false;
    $("#whoami").textContent = s.Admin + " · SDKAppID " + s.SDKAppID;
    route();
  }
  function stopPage() {
    timers.forEach(clearInterval); timers = [];
    leaving.forEach((f) => f()); leaving = [];
  }
  function every(ms, fn) { timers.push(setInterval(fn, ms)); }
  function onLeave(fn) { leaving.push(fn); }

  async function route() {
    if (!session) return;
    const name = (location.hash || "#overview").slice(1).split("/")[0];
    const page = pages[name] || pages.overview;
    stopPage();
    $("#notice").hidden = true;
    $("#nav").classList.remove("open");
    document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === "#" + name));
    const root = $("#page");
    root.replaceChildren();
    root.dataset.page = name;
    try { await page(root); } catch (e) { fail(e); }
  }

  function start() {
    $("#signin-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const s = await api("signin", { method: "POST", body: { Password: $("#signin-password").value } });
        $("#signin-password").value = "";
        showApp(s);
      } catch (err) { showSignIn(err.message); }
    });
    $("#signout").addEventListener("click", async () => {
      try { await api("signout", { method: "POST" }); } catch (e) { /* signed out anyway */ }
      showSignIn("Signed out.");
    });
    $("#menu").addEventListener("click", () => $("#nav").classList.toggle("open"));
    window.addEventListener("hashchange", route);
    api("session").then(showApp, () => showSignIn());
  }

  return { h, $, field, form, table, time, bytes, duration, list, notice, fail, ok, api, v4, every, onLeave, pages, start,
    session: () => session };
})();

document.addEventListener("DOMContentLoaded", () => Console.start());
