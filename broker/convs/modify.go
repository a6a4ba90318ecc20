package convs

import (
	"context"
	"encoding/json"
	"fmt"

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
func (s *Service) ModifyC2C(ctx context.Context, from, to, msgKey string, body json.RawMessage, ccd *string) error {
	if ids.CheckUserID(from) != nil || ids.CheckUserID(to) != nil {
		return imerr.BadAccount.New("invalid From_Account or To_Account")
	}
	seq, stored, err := s.c2cMessage(from, to, msgKey)
	if err != nil {
		return err
	}
	ev, err := decodeStored(stored)
	if err != nil {
		return err
	}
	if ev.flags()&wire.MsgFlagRecalled != 0 {
		return imerr.RecallAgain.New("message %q was recalled", msgKey)
	}
	var sender, oldCCD string
	_ = json.Unmarshal(ev.Msg["From_Account"], &sender)
	_ = json.Unmarshal(ev.Msg["CloudCustomData"], &oldCCD)
	if sender != from {
		return imerr.RecallNone.New("message %q was not sent by %s", msgKey, from)
	}
	if body == nil {
		body = ev.Msg["MsgBody"]
	}
	newCCD := oldCCD
	if ccd != nil {
		newCCD = *ccd
	}
	check, err := json.Marshal(struct {
		MsgRandom       int
		MsgBody         json.RawMessage
		CloudCustomData string
	}{0, body, newCCD})
	if err != nil {
		return imerr.BadMsgBody.New("MsgBody is not valid JSON")
	}
	_, valid, err := wire.ParseSend(check, s.msgs)
	if err != nil {
		return err
	}
	ev.Msg["MsgBody"] = valid
	if newCCD == "" {
		delete(ev.Msg, "CloudCustomData")
	} else if ev.Msg["CloudCustomData"], err = json.Marshal(newCCD); err != nil {
		return fmt.Errorf("modify %s: %w", msgKey, err)
	}
	msgJSON, err := json.Marshal(ev.Msg) // in name order, as modified messages always were
	if err != nil {
		return fmt.Errorf("modify %s: %w", msgKey, err)
	}
	modified, err := wire.EncodeEvent(ev.Event, json.RawMessage(msgJSON))
	if err != nil {
		return fmt.Errorf("modify %s: %w", msgKey, err)
	}
	note, err := wire.EncodeEvent(eventMsgModified, struct { // fields in name order, as stored before
		From_Account string
		MsgKey       string
		To_Account   string
	}{from, msgKey, to})
	if err != nil {
		return err
	}
	batch := storage.Batch{
		Replaces: []storage.Replace{{Stream: PairStream(from, to), Seq: seq, Payload: modified}},
		Appends:  []storage.Append{{Stream: UserStream(to), Payload: note}},
		Updates:  []storage.Update{lastMsgReplaced(to, from, msgKey, msgJSON), lastMsgReplaced(from, to, msgKey, msgJSON)},
	}
	if from != to {
		batch.Appends = append(batch.Appends, storage.Append{Stream: UserStream(from), Payload: note})
	}
	if _, err := s.store.Commit(ctx, batch); err != nil {
		return fmt.Errorf("modify %s: %w", msgKey, err)
	}
	return nil
}

// storedEvent is a stored message event whose fields are kept as stored
// (re-encoded in name order, as modified messages always were).
type storedEvent struct {
	Event string
	Msg   map[string]json.RawMessage
}

func decodeStored(stored []byte) (storedEvent, error) {
	var ev storedEvent
	if err := json.Unmarshal(stored, &ev); err != nil {
		return ev, fmt.Errorf("stored message: %w", err)
	}
	return ev, nil
}

// flags is the message's MsgFlagBits.
func (ev storedEvent) flags() int {
	var f int
	_ = json.Unmarshal(ev.Msg["MsgFlagBits"], &f)
	return f
}
