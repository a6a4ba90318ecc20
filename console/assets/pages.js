// imbroker console pages: Overview, Users, Groups, Messages, Statistics,
// Settings. Every change goes through the v4 REST API (Console.v4).
"use strict";

(() => {
  const { h, $, field, form, table, time, bytes, duration, list, ok, fail, api, v4, every, pages } = Console;

  // --- Overview ------------------------------------------------------------
  pages.overview = async (root) => {
    const tiles = h("div.tiles#overview-tiles");
    const rate = { last: null, series: [[], []] };
    const chartBox = h("div.chart#overview-chart");
    const listeners = h("div");
    root.append(h("h1", {}, "Overview"), tiles, h("h2", {}, "Messages per second (this page's view)"), chartBox,
      h("h2", {}, "Listeners"), listeners);
    // The last three minutes, whatever has been polled so far.
    const chart = new uPlot({ width: chartWidth(chartBox), height: 160, series: [{}, { label: "msgs/s", stroke: "#0b63ce", fill: "rgba(11,99,206,0.08)" }],
      scales: { x: { range: (u, min, max) => [max - 180, max] }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.2)] } },
      axes: [{}, { size: 40 }], legend: { show: false } }, rate.series, chartBox);
    Console.onLeave(() => chart.destroy());
    async function refresh() {
      const o = await api("overview");
      const sent = o.C2CSent + o.GroupSent;
      let perSec = 0;
      if (rate.last) perSec = Math.max(0, (sent - rate.last.sent) * 1000 / Math.max(1, o.Now - rate.last.now));
      rate.last = { sent, now: o.Now };
      rate.series[0].push(o.Now / 1000); rate.series[1].push(+perSec.toFixed(2));
      if (rate.series[0].length > 90) { rate.series[0].shift(); rate.series[1].shift(); }
      chart.setData(rate.series);
      const tile = (id, k, v) => h("div.tile", { "data-k": id }, h("div.v", {}, v), h("div.k", {}, k));
      tiles.replaceChildren(
        tile("online-users", "Users online", o.OnlineUsers), tile("online-conns", "Connections", o.OnlineConns),
        tile("msgs-per-sec", "Messages / s", perSec.toFixed(1)), tile("c2c-sent", "One-to-one sent (since start)", o.C2CSent),
        tile("group-sent", "Group sent (since start)", o.GroupSent), tile("accounts", "Accounts", o.Accounts),
        tile("groups", "Groups", o.Groups), tile("store", "Store size", o.StoreInMem ? "in memory" : bytes(o.StoreBytes)),
        tile("uptime", "Uptime", duration(o.Uptime)), tile("version", "Version", o.Version));
      listeners.replaceChildren(table(o.Listeners, [["Listener", "Name"], ["Address", "Address"]]));
    }
    await refresh();
    every(2000, () => refresh().catch(fail));
  };

  function chartWidth(el) { return Math.max(260, (el.clientWidth || el.parentNode.clientWidth || 600) - 20); }

  // --- Users ---------------------------------------------------------------
  pages.users = async (root) => {
    const results = h("div#user-list");
    const detail = h("div#user-detail");
    let after = "", prefix = "", seq = 0;
    async function load(reset) {
      if (reset) after = "";
      const mine = ++seq; // a slower, older load must not overwrite a newer one
      const r = await api("accounts?limit=50&prefix=" + encodeURIComponent(prefix) + "&after=" + encodeURIComponent(after));
      if (mine !== seq) return;
      const rows = r.Accounts.map((id) => ({ UserID: id }));
      results.replaceChildren(table(rows, [["UserID", "UserID"]], (row) => showUser(row.UserID)),
        h("div.row", {}, after ? h("button.secondary", { onclick: () => { after = ""; load(); } }, "First page") : null,
          r.More ? h("button.secondary#user-next", { onclick: () => { after = r.Accounts[r.Accounts.length - 1]; load(); } }, "Next page") : null));
    }
    async function showUser(uid) {
      detail.replaceChildren(h("h2", {}, "User " + uid));
      const sec = (title, node) => detail.append(h("div.card", {}, h("h2", {}, title), node));
      const actions = h("div.row", {},
        h("button.secondary#user-kick", { onclick: () => act(() => v4("im_open_login_svc/kick", { UserID: uid }), uid + " kicked off") }, "Kick off"),
        form("user-mute", [field("Mute one-to-one for (s)", "c2c", { type: "number", min: 0, value: 0 }),
          field("Mute in groups for (s)", "group", { type: "number", min: 0, value: 0 })], "Set mute", async (v) => {
          await v4("openconfigsvr/setnospeaking", { Set_Account: uid, C2CmsgNospeakingTime: +v.c2c, GroupmsgNospeakingTime: +v.group });
          ok("Mute of " + uid + " set"); showUser(uid);
        }),
        h("button.danger#user-delete", { onclick: () => confirm("Delete account " + uid + "?") &&
          act(async () => { await v4("im_open_login_svc/account_delete", { DeleteItem: [{ UserID: uid }] }); detail.replaceChildren(); load(true); }, uid + " deleted") }, "Delete account"));
      sec("Actions", actions);
      const parts = [
        ["Profile", () => v4("profile/portrait_get", { To_Account: [uid], TagList: ["Tag_Profile_IM_Nick", "Tag_Profile_IM_Image", "Tag_Profile_IM_Gender", "Tag_Profile_IM_SelfSignature", "Tag_Profile_IM_AllowType"] }),
          (r) => table(((r.UserProfileItem || [])[0] || {}).ProfileItem || [], [["Tag", "Tag"], ["Value", "Value"]])],
        ["Devices online", () => v4("openim/query_online_status", { To_Account: [uid], IsNeedDetail: 1 }),
          (r) => { const q = (r.QueryResult || [])[0] || {}; return h("div", {}, h("p", {}, "State: ", h("strong", {}, q.State || q.Status || "?")), table(q.Detail || [], [["Platform", "Platform"], ["Status", "Status"]])); }],
        ["Global mute", () => v4("openconfigsvr/getnospeaking", { Get_Account: uid }),
          (r) => h("p", {}, "One-to-one: " + r.C2CmsgNospeakingTime + " s, groups: " + r.GroupmsgNospeakingTime + " s (4294967295 = until unmuted)")],
        ["Friends", () => v4("sns/friend_get", { From_Account: uid, StartIndex: 0 }),
          (r) => table(r.UserDataItem || [], [["Friend", "To_Account"]])],
        ["Blacklist", () => v4("sns/black_list_get", { From_Account: uid, StartIndex: 0, MaxLimited: 100, LastSequence: 0 }),
          (r) => table(r.BlackListItem || [], [["Account", "To_Account"], ["Added", (x) => time(x.AddBlackTimeStamp)]])],
        ["Groups", () => v4("group_open_http_svc/get_joined_group_list", { Member_Account: uid }),
          (r) => table(r.GroupIdList || [], [["GroupId", "GroupId"], ["Type", "Type"], ["Name", "Name"]])],
        ["Conversations", async () => {
          const [c, u] = await Promise.all([v4("recentcontact/get_list", { From_Account: uid, TimeStamp: 0, StartIndex: 0, TopTimeStamp: 0, TopStartIndex: 0, AssistFlags: 15 }),
            v4("openim/get_c2c_unread_msg_num", { To_Account: uid })]);
          const unread = {};
          for (const x of u.C2CUnreadMsgNumList || []) unread[x.Peer_Account] = x.C2CUnreadMsgNum;
          return { items: c.SessionItem || [], unread, total: u.AllC2CUnreadMsgNum };
        }, (r) => h("div", {}, h("p", {}, "Unread one-to-one: " + (r.total || 0)), table(r.items, [["Type", (x) => (x.Type === 2 ? "group" : "one-to-one")],
          ["With", (x) => x.To_Account || x.GroupId], ["Last message", (x) => time(x.MsgTime)],
          ["Unread", (x) => (x.UnreadMsgNum !== undefined ? x.UnreadMsgNum : (r.unread[x.To_Account] || 0)), "num"]]))],
      ];
      for (const [title, load, render] of parts) {
        const box = h("div", {}, h("p.muted", {}, "Loading…"));
        sec(title, box);
        load().then((r) => box.replaceChildren(render(r)), (e) => box.replaceChildren(h("p.error", {}, e.message)));
      }
    }
    async function act(fn, msg) { try { await fn(); ok(msg); } catch (e) { fail(e); } }
    root.append(h("h1", {}, "Users"),
      h("div.card", {}, form("user-search", [field("UserID starts with", "prefix", { placeholder: "e.g. ali" })], "Search", async (v) => { prefix = v.prefix || ""; await load(true); }),
        form("user-import", [field("Import UserID", "UserID", { required: true }), field("Nick", "Nick")], "Import", async (v) => {
          await v4("im_open_login_svc/account_import", { UserID: v.UserID, Nick: v.Nick || undefined });
          ok("Account " + v.UserID + " imported"); load(true);
        })),
      results, detail);
    await load(true);
  };

  // --- Groups --------------------------------------------------------------
  const groupTypes = [["", "any type"], ["Private", "Private (Work)"], ["Public", "Public"], ["ChatRoom", "ChatRoom (Meeting)"], ["AVChatRoom", "AVChatRoom"], ["Community", "Community"]];
  pages.groups = async (root) => {
    const results = h("div#group-list");
    const detail = h("div#group-detail");
    let next = 0, type = "", search = "", seq = 0;
    async function load(reset) {
      if (reset) next = 0;
      const mine = ++seq; // a slower, older load must not overwrite a newer one
      const r = await v4("group_open_http_svc/get_appid_group_list", { Limit: 50, Next: next, GroupType: type || undefined });
      const ids = (r.GroupIdList || []).map((x) => x.GroupId);
      let infos = [];
      if (ids.length) infos = (await v4("group_open_http_svc/get_group_info", { GroupIdList: ids })).GroupInfo || [];
      if (mine !== seq) return;
      if (search) infos = infos.filter((g) => (g.GroupId + " " + (g.Name || "")).toLowerCase().includes(search.toLowerCase()));
      results.replaceChildren(h("p.muted", {}, "Groups: " + (r.TotalCount !== undefined ? r.TotalCount : ids.length)),
        table(infos, [["GroupId", "GroupId"], ["Type", "Type"], ["Name", "Name"], ["Owner", "Owner_Account"], ["Members", "MemberNum", "num"],
          ["Mute all", "MuteAllMember"]], (g) => showGroup(g.GroupId)),
        h("div.row", {}, r.Next ? h("button.secondary", { onclick: () => { next = r.Next; load(); } }, "Next page") : null));
    }
    async function showGroup(gid) {
      const info = ((await v4("group_open_http_svc/get_group_info", { GroupIdList: [gid] })).GroupInfo || [])[0] || {};
      detail.replaceChildren(h("h2", {}, "Group " + gid));
      const card = (title, ...kids) => detail.append(h("div.card", {}, h("h2", {}, title), ...kids));
      const times = ["CreateTime", "LastInfoTime", "LastMsgTime"];
      card("Profile", table(Object.entries(info).filter(([k]) => !["MemberList", "AppDefinedData", "ErrorCode", "ErrorInfo"].includes(k))
        .map(([k, v]) => ({ k, v: times.includes(k) ? time(v) : v })), [["Field", "k"], ["Value", "v"]]));
      const after = (msg) => async () => { ok(msg); await showGroup(gid); load(); };
      card("Change",
        form("group-add-member", [field("Add members (UserIDs)", "members", { required: true, placeholder: "bob, carol" })], "Add", async (v) => {
          const r = await v4("group_open_http_svc/add_group_member", { GroupId: gid, MemberList: list(v.members).map((m) => ({ Member_Account: m })) });
          const bad = (r.MemberList || []).filter((m) => m.Result === 0);
          if (bad.length) throw new Error("not added: " + bad.map((m) => m.Member_Account).join(", "));
          await after("Members added")();
        }),
        form("group-remove-member", [field("Remove members", "members", { required: true })], "Remove", async (v) => {
          await v4("group_open_http_svc/delete_group_member", { GroupId: gid, MemberToDel_Account: list(v.members) }); await after("Members removed")();
        }),
        form("group-owner", [field("New owner", "owner", { required: true })], "Change owner", async (v) => {
          await v4("group_open_http_svc/change_group_owner", { GroupId: gid, NewOwner_Account: v.owner }); await after("Owner changed")();
        }),
        form("group-mute-member", [field("Mute members", "members", { required: true }), field("for (s, 0 = unmute)", "secs", { type: "number", min: 0, value: 60 })], "Mute", async (v) => {
          await v4("group_open_http_svc/forbid_send_msg", { GroupId: gid, Members_Account: list(v.members), MuteTime: +v.secs }); await after("Mute set")();
        }),
        h("div.row", {},
          h("button.secondary#group-mute-all", { onclick: () => v4("group_open_http_svc/modify_group_base_info", { GroupId: gid, MuteAllMember: info.MuteAllMember === "On" ? "Off" : "On" }).then(after("Mute all changed"), fail) },
            info.MuteAllMember === "On" ? "Unmute all" : "Mute all"),
          h("button.danger#group-destroy", { onclick: () => confirm("Destroy group " + gid + "?") &&
            v4("group_open_http_svc/destroy_group", { GroupId: gid }).then(() => { ok("Group destroyed"); detail.replaceChildren(); load(true); }, fail) }, "Destroy")));
      const members = h("div#group-members", {}, h("p.muted", {}, "Loading…"));
      const muted = h("div", {}, h("p.muted", {}, "Loading…"));
      card("Members", members);
      card("Muted members", muted);
      const apps = h("div#group-apps", {}, h("p.muted", {}, "Loading…"));
      card("Pending applications", apps);
      // The core's group.applications / group.handle_application, run as the
      // app admin: v4 has no call for them.
      const handle = (uid, result) => api("groups/handle_application", { method: "POST", body: { GroupId: gid, Applicant_Account: uid, HandleResult: result } })
        .then(after("Application from " + uid + (result === "Agree" ? " accepted" : " refused")), fail);
      const loadApps = () => api("groups/applications?GroupId=" + encodeURIComponent(gid)).then((r) => apps.replaceChildren(
        table(r.ApplicationList, [["Applicant", "Applicant_Account"], ["Applied", (a) => time(a.ApplyTime)], ["Message", "ApplyMsg"],
          ["", (a) => h("span.row", {}, h("button", { "data-accept": a.Applicant_Account, onclick: () => handle(a.Applicant_Account, "Agree") }, "Accept"),
            h("button.danger", { "data-refuse": a.Applicant_Account, onclick: () => handle(a.Applicant_Account, "Reject") }, "Refuse"))]]),
        h("button.secondary#group-apps-refresh", { onclick: () => loadApps() }, "Refresh")), (e) => apps.replaceChildren(h("p.error", {}, e.message)));
      loadApps();
      v4("group_open_http_svc/get_group_member_info", { GroupId: gid, Limit: 500, Offset: 0 }).then((r) => members.replaceChildren(
        table(r.MemberList || [], [["Member", "Member_Account"], ["Role", "Role"], ["Joined", (m) => time(m.JoinTime)], ["Muted until", (m) => time(m.ShutUpUntil || m.MuteUntil)]])), (e) => members.replaceChildren(h("p.error", {}, e.message)));
      v4("group_open_http_svc/get_group_muted_account", { GroupId: gid }).then((r) => muted.replaceChildren(
        table(r.ShuttedUinList || [], [["Member", "Member_Account"], ["Until", (m) => time(m.ShuttedUntil)]])), (e) => muted.replaceChildren(h("p.error", {}, e.message)));
    }
    root.append(h("h1", {}, "Groups"),
      h("div.card", {},
        form("group-search", [field("Type", "type", { tag: "select", options: groupTypes }), field("Id or name contains", "q")], "Search", async (v) => { type = v.type; search = v.q || ""; await load(true); }),
        form("group-create", [field("Type", "Type", { tag: "select", options: groupTypes.slice(1) }), field("Name", "Name", { required: true }),
          field("Owner (empty: admin)", "Owner_Account"), field("GroupId (optional)", "GroupId"), field("Members", "members", { placeholder: "alice, bob" })], "Create group", async (v) => {
          const r = await v4("group_open_http_svc/create_group", { Type: v.Type, Name: v.Name, Owner_Account: v.Owner_Account || undefined,
            GroupId: v.GroupId || undefined, MemberList: list(v.members).map((m) => ({ Member_Account: m })) });
          ok("Group " + r.GroupId + " created"); await load(true); await showGroup(r.GroupId);
        })),
      results, detail);
    await load(true);
  };

  // --- Messages ------------------------------------------------------------
  // renderBody shows each element of a MsgBody readably.
  function renderBody(body) {
    if (!body || body.length === 0) return h("span.recalled", {}, "(no content)");
    return (body || []).map((e) => {
      const c = e.MsgContent || {};
      const tag = (t) => h("span.tag", {}, t);
      let v;
      switch (e.MsgType) {
        case "TIMTextElem": v = [c.Text]; break;
        case "TIMFaceElem": v = [tag("face"), "#" + c.Index, c.Data ? " " + c.Data : ""]; break;
        case "TIMLocationElem": v = [tag("location"), c.Desc || "", " (" + c.Latitude + ", " + c.Longitude + ")"]; break;
        case "TIMCustomElem": v = [tag("custom"), c.Desc || "", c.Data ? " data: " + c.Data : ""]; break;
        case "TIMImageElem": v = [tag("image"), ((c.ImageInfoArray || [])[0] || {}).URL || c.UUID || ""]; break;
        case "TIMSoundElem": v = [tag("sound"), (c.Second || 0) + " s ", c.Url || c.UUID || ""]; break;
        case "TIMFileElem": v = [tag("file"), c.FileName || c.UUID || "", c.FileSize ? " (" + bytes(c.FileSize) + ")" : ""]; break;
        case "TIMVideoFileElem": v = [tag("video"), (c.VideoSecond || 0) + " s ", c.VideoUrl || c.VideoUUID || ""]; break;
        case "TIMRelayElem": v = [tag("merged"), (c.Title || "") + " · " + (c.MsgNum || 0) + " messages"]; break;
        default: v = [tag(e.MsgType || "?"), JSON.stringify(c)];
      }
      return h("span.elem", { "data-type": e.MsgType }, v);
    });
  }
  Console.renderBody = renderBody;

  function bodyOf(v) {
    if (v.kind === "custom") return [{ MsgType: "TIMCustomElem", MsgContent: { Data: v.text, Desc: v.desc || "" } }];
    return [{ MsgType: "TIMTextElem", MsgContent: { Text: v.text } }];
  }
  const rnd = () => Math.floor(Math.random() * 4294967295);

  pages.messages = async (root) => {
    const hist = h("div#history");
    const send = form("send", [
      field("From (empty: admin)", "from"),
      field("To", "target", { tag: "select", options: [["user", "one user"], ["users", "many users"], ["group", "a group"]] }),
      field("UserID(s) or GroupId", "to", { required: true, placeholder: "bob  or  bob, carol  or  @TGS#..." }),
      field("Element", "kind", { tag: "select", options: [["text", "Text"], ["custom", "Custom (Data)"]] }),
      field("Text / Data", "text", { required: true }),
      field("Desc (custom)", "desc")], "Send", async (v) => {
      const MsgBody = bodyOf(v);
      const From_Account = v.from || undefined;
      if (v.target === "group") {
        const r = await v4("group_open_http_svc/send_group_msg", { GroupId: v.to.trim(), From_Account, Random: rnd(), MsgBody });
        ok("Sent to group " + v.to + " (MsgSeq " + r.MsgSeq + ")");
      } else if (v.target === "users") {
        const r = await v4("openim/batchsendmsg", { From_Account, To_Account: list(v.to), MsgRandom: rnd(), MsgBody });
        const bad = r.ErrorList || [];
        if (bad.length) throw new Error("not sent to: " + bad.map((x) => x.To_Account + " (" + x.ErrorCode + ")").join(", "));
        ok("Sent to " + list(v.to).length + " users");
      } else {
        const r = await v4("openim/sendmsg", { From_Account, To_Account: v.to.trim(), MsgRandom: rnd(), MsgBody, SyncOtherMachine: 1 });
        ok("Sent to " + v.to + " (MsgKey " + r.MsgKey + ")");
      }
    });
    async function c2c(v) {
      const r = await v4("openim/admin_getroammsg", { Operator_Account: v.a, Peer_Account: v.b, MaxCnt: 100, MinTime: 0, MaxTime: Math.floor(Date.now() / 1000) + 60 });
      hist.replaceChildren(h("h2", {}, "History of " + v.a + " and " + v.b), table(r.MsgList || [], [["Time", (m) => time(m.MsgTimeStamp)],
        ["From", "From_Account"], ["To", "To_Account"], ["Message", (m) => (m.MsgFlagBits & 8 ? h("span.recalled", {}, "recalled") : renderBody(m.MsgBody))],
        ["", (m) => (m.MsgFlagBits & 8 ? "" : h("button.secondary", { onclick: () => v4("openim/admin_msgwithdraw", { From_Account: m.From_Account, To_Account: m.To_Account, MsgKey: m.MsgKey })
          .then(() => { ok("Recalled"); c2c(v); }, fail) }, "Recall"))]]));
    }
    async function group(v) {
      const r = await v4("group_open_http_svc/group_msg_get_simple", { GroupId: v.gid, ReqMsgNumber: 20 });
      hist.replaceChildren(h("h2", {}, "History of group " + v.gid), table(r.RspMsgList || [], [["Seq", "MsgSeq", "num"], ["Time", (m) => time(m.MsgTimeStamp)],
        ["From", "From_Account"], ["Message", (m) => (m.MsgFlagBits & 8 ? h("span.recalled", {}, "recalled") : renderBody(m.MsgBody))],
        ["", (m) => (m.MsgFlagBits & 8 ? "" : h("button.secondary", { onclick: () => v4("group_open_http_svc/group_msg_recall", { GroupId: v.gid, MsgSeqList: [{ MsgSeq: m.MsgSeq }] })
          .then(() => { ok("Recalled"); group(v); }, fail) }, "Recall"))]]));
    }
    root.append(h("h1", {}, "Messages"),
      h("div.card", {}, h("h2", {}, "Send a message (backend delivery)"), send),
      h("div.card", {}, h("h2", {}, "History"),
        form("history-c2c", [field("User", "a", { required: true }), field("and user", "b", { required: true })], "One-to-one history", c2c),
        form("history-group", [field("GroupId", "gid", { required: true })], "Group history", group)),
      hist);
  };

  // --- Statistics ----------------------------------------------------------
  const statCols = [["Date", "Date"], ["New accounts", "NewAccounts", "num"], ["Accounts", "TotalAccounts", "num"], ["Active users", "ActiveUsers", "num"],
    ["Peak users online", "PeakOnlineUsers", "num"], ["Peak connections", "PeakOnlineConns", "num"], ["One-to-one msgs", "C2CMsgs", "num"],
    ["Group msgs", "GroupMsgs", "num"], ["Groups created", "GroupsCreated", "num"], ["Groups active", "GroupsActive", "num"], ["Groups", "TotalGroups", "num"]];
  pages.stats = async (root) => {
    let days = 30;
    const charts = {};
    const msgBox = h("div.chart#chart-messages"), userBox = h("div.chart#chart-users");
    const tbl = h("div#stats-table");
    const csv = h("a#stats-csv", { href: "/console/api/stats.csv?days=30", download: "imbroker-stats.csv" }, "Export CSV");
    const sel = h("select#stats-days", { onchange: () => { days = +sel.value; csv.href = "/console/api/stats.csv?days=" + days; refresh().catch(fail); } },
      [[7, "7 days"], [30, "30 days"], [90, "90 days"], [400, "400 days"]].map(([v, t]) => h("option", { value: v, selected: v === 30 }, t)));
    root.append(h("h1", {}, "Statistics"), h("div.row", {}, h("label", {}, "Range", sel), csv),
      h("p.muted", {}, "Per day, UTC. Kept durably for stats.keep_days; today's figures are current."),
      h("h2", {}, "Messages sent"), msgBox, h("h2", {}, "Users"), userBox, h("h2", {}, "Figures"), tbl);
    const mk = (box, series) => new uPlot({ width: chartWidth(box), height: 220, series: [{ label: "Day", value: (u, v) => (v === null || v === undefined ? "" : dateLabel(v)) }].concat(series),
      axes: [{ values: (u, vals) => vals.map(dateLabel) }, { size: 50 }], scales: { x: { time: false } } }, [[]].concat(series.map(() => [])), box);
    charts.messages = mk(msgBox, [{ label: "One-to-one", stroke: "#0b63ce" }, { label: "Group", stroke: "#1b7f3b" }]);
    charts.users = mk(userBox, [{ label: "Active users", stroke: "#b3261e" }, { label: "Peak online", stroke: "#8a5cf6" }, { label: "New accounts", stroke: "#d97706" }]);
    Console.onLeave(() => { charts.messages.destroy(); charts.users.destroy(); });
    window.consoleCharts = charts;
    let dates = [];
    function dateLabel(i) { const d = dates[Math.round(i)]; return d ? d.slice(4, 6) + "-" + d.slice(6) : ""; }
    async function refresh() {
      const r = await api("stats?days=" + days);
      const d = r.Days;
      dates = d.map((x) => x.Date);
      const xs = d.map((_, i) => i);
      charts.messages.setData([xs, d.map((x) => x.C2CMsgs), d.map((x) => x.GroupMsgs)]);
      charts.users.setData([xs, d.map((x) => x.ActiveUsers), d.map((x) => x.PeakOnlineUsers), d.map((x) => x.NewAccounts)]);
      msgBox.dataset.today = JSON.stringify(d[d.length - 1]);
      tbl.replaceChildren(table(d.slice().reverse(), statCols));
    }
    await refresh();
    every(10000, () => refresh().catch(fail));
  };

  // --- Settings ------------------------------------------------------------
  pages.settings = async (root) => {
    const s = await api("settings");
    root.append(h("h1", {}, "Settings"),
      h("div.card", {}, h("h2", {}, "Callbacks"),
        h("p", {}, "URL: ", h("code", {}, s.CallbackURL || "(none: callbacks off)")),
        h("p", {}, "Enabled commands: "), s.CallbacksEnabled && s.CallbacksEnabled.length ? h("ul#callbacks-enabled", {}, s.CallbacksEnabled.map((c) => h("li", {}, c))) : h("p.muted", {}, "none"),
        h("h2", {}, "Recent failures"), table(s.CallbackFailures, [["Time", "Time"], ["Command", "Command"], ["Error", "Error"]])),
      h("div.card", {}, h("h2", {}, "Effective configuration (secrets masked)"), h("pre#config-yaml", {}, s.ConfigYAML)));
  };
})();
