// Package history is Tencent's open_msg_svc/get_history: the messages of
// one hour, one-to-one or group, written as gzip files of message records
// and served by imbroker's own HTTP listener behind links signed with the
// app key (HMAC-SHA256) that expire after history.link_ttl.
package history

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Store is what the export reads.
type Store interface {
	Streams(prefix, after string, limit int) ([]storage.StreamInfo, error)
	ReadFrom(stream string, after uint64, limit int) (storage.Page, error)
}

// Options configure a Service.
type Options struct {
	Store  Store
	Dir    string // where files are written (created if missing)
	Key    []byte // the app secret key: signs the links
	Config config.History
	Log    *slog.Logger
}

// Service exports hours of messages and serves the files.
type Service struct {
	store Store
	dir   string
	key   []byte
	cfg   config.History
	zone  *time.Location
	log   *slog.Logger
}

// New returns the service.
func New(o Options) *Service {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: o.Store, dir: o.Dir, key: o.Key, cfg: o.Config, log: log,
		zone: time.FixedZone("history", int(o.Config.UTCOffset/time.Second))}
}

// File is one file of an hour (Tencent's File item).
type File struct {
	URL        string
	ExpireTime string // "2006-01-02 15:04:05" in history.utc_offset's zone
	FileSize   int64  // bytes before gzip
	FileMD5    string // hex MD5 before gzip
	GzipSize   int64
	GzipMD5    string
}

// C2CRecord is a one-to-one message in a file.
type C2CRecord struct {
	From_Account    string
	To_Account      string
	MsgSeq          uint32
	MsgRandom       uint32
	MsgTimestamp    int64
	MsgKey          string
	MsgBody         json.RawMessage
	CloudCustomData string `json:",omitempty"`
	MsgFlagBits     int    `json:",omitempty"` // 8: recalled (empty MsgBody)
}

// GroupRecord is a group message in a file.
type GroupRecord struct {
	GroupId         string
	From_Account    string
	MsgSeq          uint64
	MsgRandom       uint32
	MsgTimestamp    int64
	MsgBody         json.RawMessage
	CloudCustomData string `json:",omitempty"`
	MsgFlagBits     int    `json:",omitempty"`
}

// Export writes the messages of the hour msgTime ("YYYYMMDDHH") of
// chatType ("C2C" or "Group") to files and returns their signed links
// under base (scheme://host). An hour without messages has no file.
func (s *Service) Export(ctx context.Context, chatType, msgTime, base string) ([]File, error) {
	prefix := map[string]string{"C2C": "c/", "Group": "g/"}[chatType]
	if prefix == "" {
		return nil, imerr.BadParams.New("ChatType must be C2C or Group")
	}
	start, err := time.ParseInLocation("2006010215", msgTime, s.zone)
	if err != nil || len(msgTime) != 10 {
		return nil, imerr.BadParams.New("MsgTime must be an hour, YYYYMMDDHH")
	}
	now := time.Now()
	if start.After(now) {
		return nil, imerr.BadParams.New("MsgTime %s is in the future", msgTime)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("history dir: %w", err)
	}
	s.sweep(now)
	w := &writer{s: s, name: fmt.Sprintf("%s_%s_%d", chatType, msgTime, now.UnixNano())}
	defer w.abort()
	from, to := start.Unix(), start.Add(time.Hour).Unix()
	err = s.scan(ctx, prefix, func(stored []byte) error {
		rec, t, ok := record(chatType, stored)
		if !ok || t < from || t >= to {
			return nil
		}
		return w.add(rec)
	})
	if err != nil {
		return nil, err
	}
	parts, err := w.finish()
	if err != nil {
		return nil, err
	}
	expires := now.Add(s.cfg.LinkTTL)
	files := make([]File, 0, len(parts))
	for _, p := range parts {
		p.File.URL = strings.TrimSuffix(base, "/") + s.Link(p.name, expires)
		p.File.ExpireTime = expires.In(s.zone).Format(time.DateTime)
		files = append(files, p.File)
	}
	return files, nil
}

// scan calls fn with every stored event of the streams under prefix.
func (s *Service) scan(ctx context.Context, prefix string, fn func(stored []byte) error) error {
	const page = 256
	after := ""
	for {
		streams, err := s.store.Streams(prefix, after, page)
		if err != nil {
			return fmt.Errorf("history: list streams: %w", err)
		}
		for _, st := range streams {
			for seq := st.Low - 1; seq < st.Head.Seq; {
				if err := ctx.Err(); err != nil {
					return err
				}
				pg, err := s.store.ReadFrom(st.Name, seq, page)
				if err != nil {
					return fmt.Errorf("history: read %s: %w", st.Name, err)
				}
				if len(pg.Entries) == 0 {
					break
				}
				for _, e := range pg.Entries {
					if err := fn(e.Payload); err != nil {
						return err
					}
				}
				seq = pg.Entries[len(pg.Entries)-1].Pos.Seq
			}
		}
		if len(streams) < page {
			return nil
		}
		after = streams[len(streams)-1].Name
	}
}

// record turns a stored event into a file record: C2CMsg events of pair
// streams, GroupMsg events of group streams (tips are not messages).
func record(chatType string, stored []byte) (any, int64, bool) {
	var ev struct {
		Event string
		Msg   json.RawMessage
	}
	if json.Unmarshal(stored, &ev) != nil {
		return nil, 0, false
	}
	switch {
	case chatType == "C2C" && ev.Event == wire.EventC2CMsg:
		var m wire.C2CMsg
		if json.Unmarshal(ev.Msg, &m) != nil {
			return nil, 0, false
		}
		return C2CRecord{From_Account: m.From, To_Account: m.To, MsgSeq: m.MsgSeq, MsgRandom: m.MsgRandom,
			MsgTimestamp: m.MsgTime, MsgKey: m.MsgKey, MsgBody: m.MsgBody, CloudCustomData: m.CloudCustomData,
			MsgFlagBits: m.MsgFlagBits}, m.MsgTime, true
	case chatType == "Group" && ev.Event == wire.EventGroupMsg:
		var m wire.GroupMsg
		if json.Unmarshal(ev.Msg, &m) != nil {
			return nil, 0, false
		}
		return GroupRecord{GroupId: m.GroupId, From_Account: m.From_Account, MsgSeq: m.MsgSeq, MsgRandom: m.MsgRandom,
			MsgTimestamp: m.MsgTime, MsgBody: m.MsgBody, CloudCustomData: m.CloudCustomData,
			MsgFlagBits: m.MsgFlagBits}, m.MsgTime, true
	}
	return nil, 0, false
}

// part is one finished file.
type part struct {
	name string
	File
}

// writer streams records into gzip files of {"MsgList":[...]}, at most
// history.file_messages records each, hashing both forms as it goes.
type writer struct {
	s     *Service
	name  string
	parts []part
	// the open file
	f      *os.File
	zw     *gzip.Writer
	raw    *countHash // before gzip
	gz     *countHash // after gzip
	bw     *bufio.Writer
	n      int
	opened []string // files created, removed by abort unless finish ran
}

type countHash struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newCountHash(w io.Writer) *countHash { return &countHash{w: w, h: md5.New()} }

func (c *countHash) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return c.w.Write(p)
}

func (w *writer) add(rec any) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("history: encode record: %w", err)
	}
	if w.f == nil {
		if err := w.open(); err != nil {
			return err
		}
	} else if _, err := w.raw.Write([]byte(",")); err != nil {
		return err
	}
	if _, err := w.raw.Write(b); err != nil {
		return fmt.Errorf("history: write: %w", err)
	}
	if w.n++; w.n >= w.s.cfg.FileMessages {
		return w.close()
	}
	return nil
}

func (w *writer) open() error {
	name := fmt.Sprintf("%s_%d.gz", w.name, len(w.parts))
	f, err := os.OpenFile(filepath.Join(w.s.dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("history: create file: %w", err)
	}
	w.f, w.n = f, 0
	w.opened = append(w.opened, name)
	w.bw = bufio.NewWriter(f)
	w.gz = newCountHash(w.bw)
	w.zw = gzip.NewWriter(w.gz)
	w.raw = newCountHash(w.zw)
	_, err = w.raw.Write([]byte(`{"MsgList":[`))
	return err
}

// close ends the open file and records it as a part.
func (w *writer) close() error {
	if _, err := w.raw.Write([]byte("]}\n")); err != nil {
		return err
	}
	err := errors.Join(w.zw.Close(), w.bw.Flush(), w.f.Sync(), w.f.Close())
	f := w.f
	w.f = nil
	if err != nil {
		return fmt.Errorf("history: write %s: %w", f.Name(), err)
	}
	w.parts = append(w.parts, part{name: filepath.Base(f.Name()), File: File{
		FileSize: w.raw.n, FileMD5: hex.EncodeToString(w.raw.h.Sum(nil)),
		GzipSize: w.gz.n, GzipMD5: hex.EncodeToString(w.gz.h.Sum(nil))}})
	return nil
}

func (w *writer) finish() ([]part, error) {
	if w.f != nil {
		if err := w.close(); err != nil {
			return nil, err
		}
	}
	parts := w.parts
	w.opened = nil // kept: abort now removes nothing
	return parts, nil
}

// abort removes the files of a failed export.
func (w *writer) abort() {
	if w.f != nil {
		w.f.Close()
	}
	for _, name := range w.opened {
		os.Remove(filepath.Join(w.s.dir, name))
	}
}

// sweep removes files whose links have all expired.
func (s *Service) sweep(now time.Time) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err == nil && strings.HasSuffix(e.Name(), ".gz") && now.Sub(info.ModTime()) > s.cfg.LinkTTL+time.Minute {
			if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil {
				s.log.Warn("removing an expired history file failed", "file", e.Name(), "error", err)
			}
		}
	}
}
