package broker

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// eventMsgModified tells both users of a one-to-one conversation that a
// stored message was overwritten (openim/modify_c2c_msg).
const eventMsgModified = "MsgModified"

// ModifyC2C overwrites the body and/or custom data of the stored message
// msgKey that from sent to to (Tencent openim/modify_c2c_msg): the pair's
// history holds the new version, conversations whose last message it is
// show it, and both users get a MsgModified event. A nil body or ccd
// leaves that part unchanged; the result is checked as a send is.
// [IM-MODIFYMSG]
func (b *Broker) ModifyC2C(ctx context.Context, from, to, msgKey string, body json.RawMessage, ccd *string) error {
	if ids.CheckUserID(from) != nil || ids.CheckUserID(to) != nil {
		return imerr.BadAccount.New("invalid From_Account or To_Account")
	}
	raw, ok, err := b.store.Get(convs.MsgKeyIndex(from, to, msgKey))
	if err != nil {
		return err
	}
	if !ok {
		return imerr.RecallNone.New("no message %q between %s and %s", msgKey, from, to)
	}
	seq, _ := strconv.ParseUint(string(raw), 10, 64)
	stream := convs.PairStream(from, to)
	_, entries, err := b.store.Read(stream, seq-1, 1)
	if err != nil {
		return err
	}
	if len(entries) != 1 {
		return imerr.RecallNone.New("message %q is no longer stored", msgKey)
	}
	var ev struct {
		Event string
		Msg   map[string]any
	}
	if err := json.Unmarshal(entries[0].Payload, &ev); err != nil {
		return err
	}
	if f, _ := ev.Msg["MsgFlagBits"].(float64); int(f)&msgFlagRecalled != 0 {
		return imerr.RecallAgain.New("message %q was recalled", msgKey)
	}
	if sender, _ := ev.Msg["From_Account"].(string); sender != from {
		return imerr.RecallNone.New("message %q was not sent by %s", msgKey, from)
	}
	if body == nil {
		body, _ = json.Marshal(ev.Msg["MsgBody"])
	}
	newCCD, _ := ev.Msg["CloudCustomData"].(string)
	if ccd != nil {
		newCCD = *ccd
	}
	check, err := json.Marshal(map[string]any{"MsgRandom": 0, "MsgBody": body, "CloudCustomData": newCCD})
	if err != nil {
		return imerr.BadMsgBody.New("MsgBody is not valid JSON")
	}
	_, valid, err := wire.ParseSend(check, b.cfg.Messages)
	if err != nil {
		return err
	}
	ev.Msg["MsgBody"] = json.RawMessage(valid)
	if newCCD == "" {
		delete(ev.Msg, "CloudCustomData")
	} else {
		ev.Msg["CloudCustomData"] = newCCD
	}
	stored, err := wire.EncodeEvent(ev.Event, ev.Msg)
	if err != nil {
		return err
	}
	msgJSON, _ := json.Marshal(ev.Msg)
	note, _ := wire.EncodeEvent(eventMsgModified, map[string]any{"From_Account": from, "To_Account": to, "MsgKey": msgKey})
	batch := storage.Batch{
		Replaces: []storage.Replace{{Stream: stream, Seq: seq, Payload: stored}},
		Appends:  []storage.Append{{Stream: userStream(to), Payload: note}},
		Updates:  []storage.Update{lastMsgRecalled(to, convs.C2CID(from), msgKey, msgJSON), lastMsgRecalled(from, convs.C2CID(to), msgKey, msgJSON)},
	}
	if from != to {
		batch.Appends = append(batch.Appends, storage.Append{Stream: userStream(from), Payload: note})
	}
	_, err = b.store.Commit(ctx, batch)
	return err
}
