// imbroker console: the Test chat page. Each account logs in from this
// browser over MQTT over WebSocket (MQTT.js) with a UserSig the server signs
// for the signed-in admin, exactly as an app's client would
// (docs/protocol.md): ClientID {UserID}:console, username UserID, password
// UserSig; it subscribes to im/u/{UserID}/# and sends to
// im/send/c2c/{peer} or im/send/group/{GroupId}. Logins survive switching
// pages; signing out of the console or reloading ends them.
"use strict";

(() => {
  const { h, field, form, api, fail, pages, renderBody } = Console;
  const clients = new Map(); // UserID -> {client, pane}

  function text(body) {
    return (body || []).map((e) => (e.MsgType === "TIMTextElem" ? e.MsgContent.Text : "[" + e.MsgType + "]")).join(" ");
  }

  function pane(uid) {
    const log = h("div.log", { "data-user": uid });
    const status = h("span.muted", {}, "connecting…");
    const add = (cls, ...kids) => { log.append(h("div.msg." + cls, {}, kids)); log.scrollTop = log.scrollHeight; };
    const send = form("chat-send-" + uid, [h("input", { name: "to", placeholder: "to", required: true, "aria-label": "to" }),
      h("input", { name: "text", placeholder: "message", required: true, "aria-label": "message", autocomplete: "off" })], "Send", async (v, f) => {
      const c = clients.get(uid);
      if (!c || !c.client.connected) throw new Error(uid + " is not connected");
      const to = v.to.trim();
      // '#' is an MQTT wildcard: a GroupId is escaped in topic names (# as %23, % as %25).
      const topic = to.startsWith("@") || to.startsWith("group:") ? "im/send/group/" + to.replace(/^group:/, "").replace(/%/g, "%25").replace(/#/g, "%23") : "im/send/c2c/" + to;
      const payload = JSON.stringify({ MsgRandom: Math.floor(Math.random() * 4294967295), MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: v.text } }] });
      await new Promise((res, rej) => c.client.publish(topic, payload, { qos: 1 }, (err) => (err ? rej(new Error(uid + ": send failed: " + err.message)) : res())));
      f.querySelector("input[name=text]").value = "";
    });
    const el = h("div.card.chat", { "data-user": uid },
      h("div.row", {}, h("strong", {}, uid), status, h("button.link", { onclick: () => logout(uid) }, "log out")), log, send);
    return { el, log, status, add };
  }

  async function login(uid) {
    if (clients.has(uid)) throw new Error(uid + " is already logged in here");
    const s = await api("usersig", { method: "POST", body: { UserID: uid } });
    if (!s.WSEnabled) throw new Error("The MQTT WebSocket listener is off (mqtt.ws): the test chat needs it");
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = proto + "//" + location.hostname + ":" + s.WSPort + s.WSPath;
    const p = pane(uid);
    const client = mqtt.connect(url, { clientId: uid + ":console", username: uid, password: s.UserSig, protocolVersion: 4, clean: true, reconnectPeriod: 2000 });
    clients.set(uid, { client, pane: p });
    client.on("connect", () => {
      client.subscribe("im/u/" + uid + "/#", { qos: 1 }, (err) => {
        p.status.textContent = err ? "subscribe failed" : "online";
        p.status.dataset.state = err ? "error" : "online";
      });
    });
    client.on("close", () => { p.status.textContent = "offline"; p.status.dataset.state = "offline"; });
    client.on("error", (err) => p.add("err", "connection error: " + err.message));
    client.on("message", (topic, payload) => {
      let m;
      try { m = JSON.parse(payload.toString()); } catch (e) { return; }
      if (topic === "im/u/" + uid + "/rpc") {
        if (m.ErrorCode) p.add("err", (m.Op || "request") + " failed: " + m.ErrorCode + " " + (m.ErrorInfo || ""));
        if (m.Op === "kicked") p.add("err", "kicked off (" + (m.Reason || "") + ")");
        return;
      }
      const x = m.Msg || {};
      if (m.Event === "C2CMsg") {
        if (x.From_Account === uid) p.add("out", "→ " + x.To_Account + ": ", renderBody(x.MsgBody));
        else p.add("in", x.From_Account + ": ", renderBody(x.MsgBody));
      } else if (m.Event === "GroupMsg") {
        p.add(x.From_Account === uid ? "out" : "in", "[" + x.GroupId + "] " + x.From_Account + ": ", renderBody(x.MsgBody));
      } else if (m.Event) {
        p.add("muted", m.Event + (x.TipType ? " " + x.TipType : ""));
      }
    });
    return p;
  }

  function logout(uid) {
    const c = clients.get(uid);
    if (!c) return;
    c.client.end(true);
    c.pane.el.remove();
    clients.delete(uid);
  }

  pages.chat = async (root) => {
    const box = h("div.chats#chats");
    for (const c of clients.values()) box.append(c.pane.el);
    root.append(h("h1", {}, "Test chat"),
      h("p.muted", {}, "Log accounts in from this browser over MQTT over WebSocket and chat between them, as an app's clients would. " +
        "Send to a UserID, or to a GroupId (starting with @, or written group:ID)."),
      h("div.card", {}, form("chat-login", [field("Log in as UserID", "uid", { required: true, placeholder: "alice" })], "Log in", async (v, f) => {
        const p = await login(v.uid.trim());
        box.append(p.el);
        f.reset();
      })), box);
  };

  window.addEventListener("beforeunload", () => { for (const uid of [...clients.keys()]) logout(uid); });
  Console.chatText = text;
})();
