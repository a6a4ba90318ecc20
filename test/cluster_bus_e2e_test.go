package test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/internal/mqtttest"
)

// Presence, kicks, ClientID takeover, the device limit and live rooms
// across three imbroker processes (docs/cluster.md, "Presence, kicks and
// live rooms"): what one node does for its own connections holds for the
// connections of every node.
//
//	go test -race -count=1 -run TestE2E_ClusterBus -v ./test
func TestE2E_ClusterBus(t *testing.T) {
	const interval, timeout = 250 * time.Millisecond, 1500 * time.Millisecond
	nodes := clusterProcs(t, 3, fmt.Sprintf("  presence_interval: %s\n  presence_timeout: %s\n", interval, timeout),
		"devices:\n  max_per_user: 2\n  on_exceed: kick_oldest\nguests:\n  enabled: true\nrelations:\n  status_events: true\n")
	for _, n := range nodes {
		n.restart(t)
	}
	for _, n := range nodes {
		n.waitReady(t, 60*time.Second)
	}
	owner := ownerOf(t, nodes)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	var victim, other *clusterProc // the two nodes that do not own the log
	for _, n := range nodes {
		switch {
		case n == owner:
		case victim == nil:
			victim = n
		default:
			other = n
		}
	}
	dial := func(n *clusterProc, clientID, user string) *mqtttest.Conn {
		t.Helper()
		c := mqDialOK(t, n.b, mqRawLogin(n.b, clientID, user))
		return c
	}
	disconnected := func(c *mqtttest.Conn, who string, code byte) {
		t.Helper()
		if pk := c.Expect(packets.Disconnect); pk.ReasonCode != code {
			t.Fatalf("%s: DISCONNECT 0x%02x, want 0x%02x", who, pk.ReasonCode, code)
		}
	}

	// Presence: alice online on n1 is online, with her device, on every node.
	a1 := dial(n1, "alice:web", "alice")
	for _, n := range nodes {
		waitDevices(t, n, "alice", "web")
	}

	// Takeover: the same ClientID on n2 ends n1's connection with 0x8E;
	// alice stays online with one device.
	a2 := dial(n2, "alice:web", "alice")
	disconnected(a1, "alice:web on n1", packets.ErrSessionTakenOver.Code)
	for _, n := range nodes {
		waitDevices(t, n, "alice", "web")
	}

	// Status events: the owner announces a change on any node. grace (on
	// one follower) has frank and carol as friends; frank logs in and out
	// on the other follower.
	n1.b.v4OK("sns/friend_import", map[string]any{"From_Account": "grace", "AddFriendItem": []any{
		map[string]any{"To_Account": "frank"}, map[string]any{"To_Account": "carol"}}})
	grace := other.b.Connect("grace", "grace")
	statusOf := func(user, state string) func(Event) bool {
		return relIs("StatusChanged", "To_Account", user, "State", state)
	}
	frank := dial(victim, "frank", "frank")
	relWait(t, grace, statusOf("frank", "Online"))
	frank.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
	relWait(t, grace, statusOf("frank", "Offline"))

	// Device limit (2, kick_oldest): bob's third device, on n3, kicks his
	// oldest, on n1.
	b1 := dial(n1, "bob:a", "bob")
	waitDevices(t, n3, "bob", "a")
	b2 := dial(n2, "bob:b", "bob")
	waitDevices(t, n3, "bob", "a", "b")
	b3 := dial(n3, "bob:c", "bob")
	disconnected(b1, "bob:a on n1", packets.ErrAdministrativeAction.Code)
	for _, n := range nodes {
		waitDevices(t, n, "bob", "b", "c")
	}

	// Logins racing on three nodes (max 2): each node may admit its own
	// before it hears of the others; then the one holding the oldest
	// kicks it, and only it. zoe ends with two devices on every node.
	zoe := make([]*mqtttest.Conn, 3)
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, ca := mqDialRaw(t, n.b, mqRawLogin(n.b, fmt.Sprintf("zoe:%d", i), "zoe"), false)
			if ca.ReasonCode == 0 {
				zoe[i] = c
			}
		}()
	}
	wg.Wait()
	// Each node lists its own connection unless it ended: three nodes
	// agreeing on two devices is the end state, not a view lagging behind.
	var left []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		var views [][]string
		for _, n := range nodes {
			views = append(views, devicesOn(n, "zoe"))
		}
		if len(views[0]) == 2 && slices.Equal(views[0], views[1]) && slices.Equal(views[0], views[2]) {
			left = views[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("zoe's devices on the three nodes: %v, want the same two on each", views)
		}
		time.Sleep(20 * time.Millisecond) // polling REST (a child process has no event to wait on)
	}
	for i, c := range zoe {
		if c == nil {
			t.Fatalf("zoe:%d refused at CONNACK (kick_oldest admits every login)", i)
		}
		if !slices.Contains(left, fmt.Sprint(i)) {
			disconnected(c, fmt.Sprintf("zoe:%d, the oldest", i), packets.ErrAdministrativeAction.Code)
		}
	}

	// A REST kick on n1 closes bob's connections on n2 and n3.
	n1.b.v4OK("im_open_login_svc/kick", map[string]any{"UserID": "bob"})
	disconnected(b2, "bob:b on n2", packets.ErrAdministrativeAction.Code)
	disconnected(b3, "bob:c on n3", packets.ErrAdministrativeAction.Code)
	for _, n := range nodes {
		waitDevices(t, n, "bob")
	}

	// Deleting an account on n2 closes its connections on n1 and n3.
	h1, h3 := dial(n1, "henry:a", "henry"), dial(n3, "henry:b", "henry")
	waitDevices(t, n2, "henry", "a", "b")
	n2.b.v4OK("im_open_login_svc/account_delete", map[string]any{"DeleteItem": []map[string]string{{"UserID": "henry"}}})
	disconnected(h1, "henry:a on n1", packets.ErrAdministrativeAction.Code)
	disconnected(h3, "henry:b on n3", packets.ErrAdministrativeAction.Code)

	// A live room: a message sent through any node reaches the room's
	// listeners on every node, once.
	gid := n1.b.v4OK("group_open_http_svc/create_group", map[string]any{"Owner_Account": "alice", "Type": "AVChatRoom", "Name": "live"})["GroupId"].(string)
	topic := "im/g/" + gidLevel(gid)
	var guests []*mqtttest.Conn
	for _, n := range nodes {
		n.b.v4OK("group_open_http_svc/get_group_info", map[string]any{"GroupIdList": []string{gid}}) // applied here
		g := mqDialOK(t, n.b, packets.Packet{Connect: packets.ConnectParams{ClientIdentifier: "guest/" + n.name, Clean: true}})
		if rc := g.Subscribe(1, 0, packets.Subscription{Filter: topic}); rc[0] != 0 {
			t.Fatalf("guest on %s subscribes %s: 0x%02x", n.name, topic, rc[0])
		}
		guests = append(guests, g)
	}
	// A member joining through the owner: the tip reaches the listeners
	// on every node.
	dave := owner.b.Connect("dave", "dave")
	gtOK(t, "dave joins the live room", dave.Req("group.join", map[string]any{"GroupId": gid}))
	for j, g := range guests {
		if pk := g.Expect(packets.Publish); !strings.Contains(string(pk.Payload), "MemberJoin") || !strings.Contains(string(pk.Payload), "dave") {
			t.Fatalf("guest on %s: got %s, want dave's MemberJoin tip", nodes[j].name, pk.Payload)
		}
	}
	// Its online members are counted on every node (alice on n2, dave on
	// the owner), where the owner's group state answers.
	if got := owner.b.v4OK("group_open_http_svc/get_online_member_num", map[string]any{"GroupId": gid})["OnlineMemberNum"]; got != float64(2) {
		t.Fatalf("get_online_member_num on the owner: %v, want 2 (alice on n2, dave on %s)", got, owner.name)
	}
	for i, via := range []*clusterProc{n3, n2} {
		text := fmt.Sprintf("live %d via %s", i, via.name)
		start := time.Now()
		via.b.v4OK("group_open_http_svc/send_group_msg", map[string]any{"GroupId": gid, "From_Account": "alice", "Random": Random(),
			"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": text}}}})
		for j, g := range guests {
			// The next event is this message: the one before reached each guest once.
			if pk := g.Expect(packets.Publish); pk.TopicName != topic || !strings.Contains(string(pk.Payload), text) {
				t.Fatalf("guest on %s: got %s %s, want %q", nodes[j].name, pk.TopicName, pk.Payload, text)
			}
		}
		t.Logf("live-room message sent via %s reached the guests on all nodes in %s", via.name, time.Since(start).Round(time.Millisecond))
	}
	// Every node numbers the room as its owner does: each follows the
	// events the bus relays before delivering them, so once the guests
	// have the messages get_group_info answers the same everywhere.
	liveInfo := func(n *clusterProc) (next, last float64) {
		info := items(n.b.v4OK("group_open_http_svc/get_group_info", map[string]any{"GroupIdList": []string{gid}}), "GroupInfo")
		return info[0]["NextMsgSeq"].(float64), info[0]["LastMsgTime"].(float64)
	}
	wantNext, wantLast := liveInfo(owner)
	if wantNext < 4 || wantLast == 0 { // dave's tip and two messages
		t.Fatalf("live room on the owner: NextMsgSeq %v LastMsgTime %v, want at least 4 and a time", wantNext, wantLast)
	}
	for _, n := range nodes {
		if next, last := liveInfo(n); next != wantNext || last != wantLast {
			t.Fatalf("live room on %s: NextMsgSeq %v LastMsgTime %v, the owner answers %v %v", n.name, next, last, wantNext, wantLast)
		}
	}

	// A node that dies: its users are offline on the others within
	// presence_timeout (plus a heartbeat); restarted, it learns who is
	// online elsewhere.
	dial(victim, "carol:pad", "carol")
	dial(owner, "erin:phone", "erin")
	waitDevices(t, other, "carol", "pad")
	waitDevices(t, victim, "erin", "phone")
	killed := time.Now()
	if err := victim.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	victim.p.wait()
	for _, n := range []*clusterProc{owner, other} {
		waitDevices(t, n, "carol")
	}
	if d := time.Since(killed); d > timeout+4*interval+time.Second {
		t.Fatalf("carol offline %s after her node died; presence_timeout %s", d, timeout)
	} else {
		t.Logf("carol offline on both survivors %s after %s was killed (presence_timeout %s)", d.Round(time.Millisecond), victim.name, timeout)
	}
	// grace's node delivers these from the log: if the killed node served
	// its log consumer, it applies nothing until its tail starts over (the
	// 5 s stall check plus a new consumer; docs/cluster.md, Limits).
	relWaitWithin(t, grace, 20*time.Second, statusOf("carol", "Online"))
	relWaitWithin(t, grace, 20*time.Second, statusOf("carol", "Offline")) // announced by the owner for the dead node
	victim.restart(t)
	victim.waitReady(t, 60*time.Second)
	waitDevices(t, victim, "erin", "phone")
	// Restarted, it learns the live room's numbering from the others.
	for deadline := time.Now().Add(10 * time.Second); ; {
		next, last := liveInfo(victim)
		if next == wantNext && last == wantLast {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live room on %s after its restart: NextMsgSeq %v LastMsgTime %v, want %v %v", victim.name, next, last, wantNext, wantLast)
		}
		time.Sleep(50 * time.Millisecond) // REST is the only way to ask a child process: poll
	}
	a2.Close()
}

// waitDevices waits until query_online_status on n lists exactly
// platforms for user (none: offline). Presence travels asynchronously,
// and REST is the only way to ask a child process: it polls.
func waitDevices(t *testing.T, n *clusterProc, user string, platforms ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := devicesOn(n, user)
		if slices.Equal(got, platforms) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s: devices %v, want %v", user, n.name, got, platforms)
		}
		time.Sleep(20 * time.Millisecond) // polling REST (a child process has no event to wait on)
	}
}

// devicesOn is user's platforms online as query_online_status on n lists
// them, sorted.
func devicesOn(n *clusterProc, user string) []string {
	res := n.b.v4OK("openim/query_online_status", map[string]any{"To_Account": []string{user}, "IsNeedDetail": 1})
	var got []string
	for _, r := range res["QueryResult"].([]any) {
		for _, d := range r.(map[string]any)["Detail"].([]any) {
			got = append(got, d.(map[string]any)["Platform"].(string))
		}
	}
	slices.Sort(got)
	return got
}
