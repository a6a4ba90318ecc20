package rest

import (
	"context"
	"net/http"

	"github.com/imbroker/imbroker/broker/history"
	"github.com/imbroker/imbroker/internal/imerr"
)

// History is get_history's exporter and the file server behind its links
// (broker/history.Service).
type History interface {
	Export(ctx context.Context, chatType, msgTime, base string) ([]history.File, error)
	http.Handler
}

// openMsgSvcEndpoints are the open_msg_svc service: message-record files.
func openMsgSvcEndpoints() []*endpoint {
	return []*endpoint{
		{Path: "open_msg_svc/get_history", Summary: "download links to gzip files of one hour's C2C or group messages",
			Request: []string{"ChatType", "MsgTime"}, typed: typed(getHistory)},
	}
}

type historyFilesReply struct{ File []history.File }

func getHistory(c *call) (*historyFilesReply, error) {
	var q struct{ ChatType, MsgTime string }
	if err := c.decode(&q, imerr.BadParams); err != nil {
		return nil, err
	}
	files, err := c.hist.Export(c.ctx, q.ChatType, q.MsgTime, c.base)
	if err != nil {
		return nil, err
	}
	return &historyFilesReply{File: files}, nil
}
