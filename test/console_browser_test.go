package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/imbroker/imbroker/config"
)

// The console's browser tests drive /console in a real headless Chromium
// (chromedp). Chromium must be installed (.ci/run installs Debian's
// package): a missing browser fails the test, it is never skipped.
// IMBROKER_CONSOLE_SCREENSHOTS=dir writes the pages' screenshots there
// (docs/console/ is made so: see docs/console.md).

const consolePassword = "console-test-password"

func consoleBroker(t *testing.T, mods ...func(*config.Config)) *Broker {
	return StartBroker(t, append([]func(*config.Config){consoleConfig}, mods...)...)
}

// consoleConfig serves the console with a known password.
func consoleConfig(c *config.Config) {
	c.Console.Password = consolePassword
	c.Stats.Interval = 200 * time.Millisecond
}

// browser starts headless Chromium for one test; everything is closed when
// the test ends.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("no Chromium: install it (apt-get install chromium); .ci/run does")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancel()
		acancel()
		t.Fatalf("start Chromium: %v", err)
	}
	t.Cleanup(func() { cancel(); acancel() })
	return ctx
}

type step = chromedp.Action[chromedp.Void]

// run runs browser steps with a deadline, failing the test on error.
func run(t *testing.T, ctx context.Context, what string, steps ...step) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		notice, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector("#notice")||{}).textContent||""`))
		t.Fatalf("%s: %v (page notice: %q)", what, err, notice)
	}
}

// eval evaluates a JavaScript expression into T.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until the JavaScript expression is true.
func waitJS(expr string) step {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(15*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))(ctx, tg)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", expr, err)
		}
		return nil
	})
}

// textHas waits until the element matching sel contains s.
func textHas(sel, s string) step {
	return waitJS(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); })()`, sel, s))
}

// fill sets a form field's value (inputs and selects).
func fill(sel, v string) step { return chromedp.SetValue(chromedp.CSS(sel), v) }

func click(sel string) step { return chromedp.Click(chromedp.CSS(sel)) }

// clearNotice empties the page's notice, so that waiting for the next one
// cannot be satisfied by an earlier one.
func clearNotice() step {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`(() => { const n = document.querySelector("#notice"); if (n) n.textContent = ""; return true; })()`)(ctx, tg)
		return err
	})
}

func visible(sel string) step { return chromedp.WaitVisible(chromedp.CSS(sel)) }

// shot writes a PNG of the page when IMBROKER_CONSOLE_SCREENSHOTS is set.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("IMBROKER_CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// findUser searches the Users page by prefix and waits for one result.
func findUser(base, prefix string) step {
	return chromedp.Steps(
		chromedp.Navigate(base+"#users"),
		visible("#user-search"),
		fill(`#user-search input[name=prefix]`, prefix),
		click(`#user-search button`),
		waitJS(`document.querySelectorAll("#user-list tbody tr").length === 1`))
}

func signIn(t *testing.T, ctx context.Context, b *Broker) {
	t.Helper()
	run(t, ctx, "sign in",
		chromedp.Navigate("http://"+b.App.HTTPAddr()+"/console"),
		visible("#signin-password"),
		chromedp.SendKeys(chromedp.CSS("#signin-password"), consolePassword),
		click("#signin-submit"),
		textHas("#overview-tiles", "Users online"))
}

// TestConsoleBrowser walks the console as an operator would, in one
// browser: a wrong password is refused, sign-in, the overview's live
// figures, finding a user, sending a message from the Messages page that a
// paho client receives and the history shows, creating a group and adding
// a member, accepting a join application, two accounts chatting on the
// Test chat page over MQTT over WebSocket, the statistics chart's figures
// after known traffic, and the settings with secrets masked.
// [CONSOLE-BROWSER]
func TestConsoleBrowser(t *testing.T) {
	b := consoleBroker(t)
	ctx := browser(t)
	base := "http://" + b.App.HTTPAddr() + "/console/"
	b.v4OK("im_open_login_svc/multiaccount_import", map[string]any{"Accounts": []string{"alice", "bob", "carol", "dave"}})
	bob := b.Connect("bob", "bob")

	run(t, ctx, "wrong password",
		chromedp.Navigate(base),
		visible("#signin-password"),
		chromedp.SendKeys(chromedp.CSS("#signin-password"), "not-the-password"),
		click("#signin-submit"),
		textHas("#signin-error", "wrong password"))
	shot(t, ctx, "signin")
	signIn(t, ctx, b)
	run(t, ctx, "overview figures", textHas(`[data-k="online-users"]`, "1"), textHas(`[data-k="accounts"]`, "4"))

	// Users: search by prefix, open bob: online with one device.
	run(t, ctx, "find a user", findUser(base, "bo"), textHas("#user-list", "bob"),
		click("#user-list tbody tr"),
		textHas("#user-detail", "State: Online"))

	// Messages: alice -> bob from the page; bob's paho client gets it.
	run(t, ctx, "send from the Messages page",
		chromedp.Navigate(base+"#messages"),
		visible("#send"),
		fill(`#send input[name=from]`, "alice"),
		fill(`#send select[name=target]`, "user"),
		fill(`#send input[name=to]`, "bob"),
		fill(`#send input[name=text]`, "hello from the console"),
		clearNotice(),
		click(`#send button[type=submit]`),
		textHas("#notice", "Sent to bob"))
	e := bob.NextEvent()
	if e.Event != "C2CMsg" || e.Msg.From_Account != "alice" || !strings.Contains(string(e.Msg.MsgBody), "hello from the console") {
		t.Fatalf("bob got %s", e.Raw)
	}
	run(t, ctx, "one-to-one history",
		fill(`#history-c2c input[name=a]`, "alice"),
		fill(`#history-c2c input[name=b]`, "bob"),
		click(`#history-c2c button`),
		textHas("#history", "hello from the console"))
	shot(t, ctx, "messages")
	// A custom element, rendered as such in the history, then recalled from the list.
	run(t, ctx, "custom element and recall",
		fill(`#send select[name=kind]`, "custom"),
		fill(`#send input[name=text]`, `{"order":42}`),
		fill(`#send input[name=desc]`, "an order"),
		clearNotice(),
		click(`#send button[type=submit]`),
		textHas("#notice", "Sent to bob"),
		click(`#history-c2c button`),
		textHas(`#history [data-type="TIMCustomElem"]`, `an order data: {"order":42}`),
		clearNotice(),
		click(`#history tbody tr:first-child button`),
		textHas("#notice", "Recalled"),
		textHas("#history tbody tr:first-child", "recalled"))
	for _, want := range []string{"C2CMsg", "MsgRecalled"} {
		if e := bob.NextEvent(); e.Event != want {
			t.Fatalf("bob got %s, want %s", e.Raw, want)
		}
	}

	// Groups: create one owned by alice, add carol from the page.
	var gid string
	run(t, ctx, "create a group",
		chromedp.Navigate(base+"#groups"),
		visible("#group-create"),
		fill(`#group-create select[name=Type]`, "Public"),
		fill(`#group-create input[name=Name]`, "console group"),
		fill(`#group-create input[name=Owner_Account]`, "alice"),
		click(`#group-create button`),
		textHas("#group-detail", "console group"))
	gid = eval[string](t, ctx, `document.querySelector("#group-detail h2").textContent.replace("Group ", "")`)
	// bob applies over MQTT (a Public group needs permission by default);
	// adding carol reloads the group, with bob's application.
	if r := bob.Req("group.join", map[string]any{"GroupId": gid, "ApplyMsg": "let me in"}); r["JoinResult"] != "Pending" {
		t.Fatalf("bob's application: %v", r)
	}
	run(t, ctx, "add a member",
		fill(`#group-add-member input[name=members]`, "carol"),
		clearNotice(),
		click(`#group-add-member button`),
		textHas("#notice", "Members added"),
		textHas("#group-members", "carol"),
		textHas("#group-apps", "let me in"))
	shot(t, ctx, "groups")
	run(t, ctx, "accept an application",
		clearNotice(),
		click(`#group-apps button[data-accept="bob"]`),
		textHas("#notice", "Application from bob accepted"),
		textHas("#group-members", "bob"),
		textHas("#group-apps", "Nothing to show"))
	members := b.v4OK("group_open_http_svc/get_group_member_info", map[string]any{"GroupId": gid})
	if raw, _ := json.Marshal(members["MemberList"]); !strings.Contains(string(raw), `"carol"`) || !strings.Contains(string(raw), `"bob"`) {
		t.Fatalf("carol and bob are not both members of %s: %s", gid, raw)
	}
	gtWait(t, "bob", bob.Events, func(e Event) bool { return gtTip("ApplicationHandled")(e) && gtMsg(e)["Result"] == "Agree" })
	run(t, ctx, "send to the group from the Messages page",
		chromedp.Navigate(base+"#messages"),
		visible("#send"),
		fill(`#send select[name=target]`, "group"),
		fill(`#send input[name=to]`, gid),
		fill(`#send input[name=text]`, "hello group"),
		clearNotice(),
		click(`#send button[type=submit]`),
		textHas("#notice", "Sent to group"),
		fill(`#history-group input[name=gid]`, gid),
		click(`#history-group button`),
		textHas("#history", "hello group"))

	// Test chat: dave and carol log in from the browser and chat.
	run(t, ctx, "test chat",
		chromedp.Navigate(base+"#chat"),
		visible("#chat-login"),
		fill(`#chat-login input[name=uid]`, "dave"), click(`#chat-login button`),
		waitJS(`document.querySelector('.chat[data-user="dave"] [data-state]')?.dataset.state === "online"`),
		fill(`#chat-login input[name=uid]`, "carol"), click(`#chat-login button`),
		waitJS(`document.querySelector('.chat[data-user="carol"] [data-state]')?.dataset.state === "online"`),
		fill(`#chat-send-dave input[name=to]`, "carol"),
		fill(`#chat-send-dave input[name=text]`, "hi carol, it's dave"),
		click(`#chat-send-dave button`),
		textHas(`.log[data-user="carol"]`, "dave: hi carol, it's dave"),
		textHas(`.log[data-user="dave"]`, "→ carol: hi carol, it's dave"),
		fill(`#chat-send-carol input[name=to]`, "dave"),
		fill(`#chat-send-carol input[name=text]`, "hello dave"),
		click(`#chat-send-carol button`),
		textHas(`.log[data-user="dave"]`, "carol: hello dave"),
		// carol is a member of the group: a group message from her pane comes back on her stream.
		fill(`#chat-send-carol input[name=to]`, gid),
		fill(`#chat-send-carol input[name=text]`, "hello members"),
		click(`#chat-send-carol button`),
		textHas(`.log[data-user="carol"]`, "["+gid+"] carol: hello members"))
	shot(t, ctx, "chat")

	// Known traffic on top of the 4 one-to-one messages and 2 group messages
	// above: 3 more one-to-one and 1 more in the group.
	for i := 0; i < 3; i++ {
		req := Text(fmt.Sprint("traffic ", i), Random())
		req["From_Account"], req["To_Account"] = "alice", "carol"
		b.v4OK("openim/sendmsg", req)
	}
	for i := 0; i < 1; i++ {
		b.v4OK("group_open_http_svc/send_group_msg", map[string]any{"GroupId": gid, "From_Account": "alice", "Random": Random(),
			"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "to the group"}}}})
	}
	run(t, ctx, "statistics chart",
		chromedp.Navigate(base+"#stats"),
		waitJS(`!!window.consoleCharts && window.consoleCharts.messages.data[1].length === 30`))
	today := eval[struct{ C2C, Group, Active, Created, GroupsActive float64 }](t, ctx, `(() => {
		const m = window.consoleCharts.messages.data, u = window.consoleCharts.users.data, n = m[1].length - 1;
		const d = JSON.parse(document.querySelector("#chart-messages").dataset.today);
		return {C2C: m[1][n], Group: m[2][n], Active: u[1][n], Created: d.GroupsCreated, GroupsActive: d.GroupsActive}; })()`)
	// Active users: bob (paho), dave and carol (the test chat).
	if today.C2C != 7 || today.Group != 3 || today.Active != 3 || today.Created != 1 || today.GroupsActive != 1 {
		t.Fatalf("today's chart figures %+v, want C2C 7, Group 3, Active 3, Created 1, GroupsActive 1", today)
	}
	run(t, ctx, "statistics table", textHas("#stats-table tbody tr:first-child", time.Now().UTC().Format("20060102")))
	shot(t, ctx, "statistics")

	run(t, ctx, "settings",
		chromedp.Navigate(base+"#settings"),
		textHas("#config-yaml", "password: '********'"))
	cfgText := eval[string](t, ctx, `document.querySelector("#config-yaml").textContent`)
	if strings.Contains(cfgText, consolePassword) || strings.Contains(cfgText, TestKey) {
		t.Fatal("the settings page shows a secret")
	}
	shot(t, ctx, "settings")

	// The overview after the traffic (its live figures moved without a
	// reload), and bob with his conversations, for the docs.
	run(t, ctx, "overview live",
		chromedp.Navigate(base+"#overview"),
		textHas(`[data-k="c2c-sent"]`, "7"),
		waitJS(`document.querySelector("#overview-chart") && document.querySelectorAll("#overview-tiles .tile").length > 0`))
	b.v4OK("openim/sendmsg", map[string]any{"From_Account": "carol", "To_Account": "bob", "MsgRandom": Random(),
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "live"}}}})
	run(t, ctx, "overview refreshes", textHas(`[data-k="c2c-sent"]`, "8"))
	shot(t, ctx, "overview")
	run(t, ctx, "user detail", findUser(base, "bob"),
		click("#user-list tbody tr"),
		textHas("#user-detail", "Unread one-to-one: "))
	shot(t, ctx, "users")

	// A phone-sized screen: the menu folds away and the tiles stack.
	run(t, ctx, "phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"#overview"),
		textHas("#overview-tiles", "Users online"),
		waitJS(`getComputedStyle(document.querySelector("#nav")).display === "none"`))
	shot(t, ctx, "phone")

	// A failed API call shows its error: a group that does not exist.
	run(t, ctx, "API error shown", chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(base+"#messages"),
		visible("#history-group"),
		fill(`#history-group input[name=gid]`, "no-such-group"),
		clearNotice(),
		click(`#history-group button`),
		textHas("#notice", "group_open_http_svc/group_msg_get_simple failed: 10010"))
}
