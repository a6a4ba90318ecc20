package cluster

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/imbroker/imbroker/storage"
)

// Snapshots (docs/cluster.md): the owner puts a copy of its store (a Pebble
// checkpoint at a known applied position, as a tar) into a JetStream object
// store replicated like the log, every cluster.snapshot_interval and when a
// node asks. A node that starts and cannot catch up from the log (its next
// position has left it, or the log starts from another node's history)
// loads it before its store opens, then follows the log from the
// snapshot's position. A running node that falls behind says so (503,
// ErrBehind) and loads one at its next start.

const (
	snapBucket = "IMB_SNAP"
	snapObject = "store"
	snapKind   = "cluster.snapshot" // forwarded to the owner: take one now
	metaPos    = "position"
	// A snapshot is uploaded in parts of at most partBytes: the object
	// store's Put publishes an object's chunks (128 KiB) without waiting
	// for their acknowledgements, and a single Put of a 1M-message store
	// (about 250 MB) was refused: the client stalls past 4,000
	// unacknowledged chunks, and a stream's ingest queue refuses (429)
	// past 128 MiB. Put waits for all of a part's chunks, so a part bounds
	// what is in flight. The object "store" names the current parts.
	partBytes = 32 << 20
	// hdrBase marks the log's first position when the node named in it
	// started the log from a store with history: a node without that
	// history cannot apply the log from there and needs a snapshot.
	hdrBase = "Imb-Base"
	// snapTmp is where a snapshot is unpacked in the data dir before it
	// replaces the store.
	snapTmp = "snapshot.tmp"
)

// ErrForeign: this node's store holds history written before it was a
// cluster node, and the log did not start from it: applying the log on top
// would mix two histories.
var ErrForeign = errors.New("cluster: this node's store holds history the log does not start from")

// Snapshotter is what snapshots need of a store (*storage.Store).
type Snapshotter interface {
	Checkpoint(dir string) (uint64, error)
	Commits() (uint64, error)
	Sync() error
}

var _ Snapshotter = (*storage.Store)(nil)

// SnapshotInfo describes a snapshot in the cluster.
type SnapshotInfo struct {
	Pos   uint64        // the log position the store held: it follows the log from Pos+1
	Bytes uint64        // its size (a tar of the checkpoint)
	Node  string        // the node that took it
	Took  time.Duration // checkpoint and upload (TakeSnapshot only)

	prefix string // its parts are the objects prefix.0 … prefix.{parts-1}
	parts  int
}

// commits is the store's commit count; 0 when it cannot tell (a store
// without snapshots: the cluster's own tests).
func commits(store Applier) uint64 {
	if s, ok := store.(Snapshotter); ok {
		if n, err := s.Commits(); err == nil {
			return n
		}
	}
	return 0
}

// snapConfig is the snapshot bucket: replicated like the log, so that a
// snapshot outlives the node that took it.
func (n *Node) snapConfig() jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{Bucket: snapBucket, Description: "imbroker store snapshots",
		Storage: jetstream.FileStorage, Replicas: n.cfg.Replicas}
}

// snapStore is the snapshot bucket. The owner loop creates it with the log
// (placing its replicas needs every node up, as the log does); it is
// created here only if that has not happened.
func (n *Node) snapStore(ctx context.Context) (jetstream.ObjectStore, error) {
	obs, err := n.js.ObjectStore(ctx, snapBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = n.js.CreateOrUpdateObjectStore(ctx, n.snapConfig())
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: snapshot bucket: %w", err)
	}
	return obs, nil
}

// Snapshot describes the snapshot the cluster holds; ok is false when none.
func (n *Node) Snapshot(ctx context.Context) (info SnapshotInfo, ok bool, err error) {
	obs, err := n.snapStore(ctx)
	if err != nil {
		return SnapshotInfo{}, false, err
	}
	oi, err := obs.GetInfo(ctx, snapObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return SnapshotInfo{}, false, nil
	}
	if err != nil {
		return SnapshotInfo{}, false, fmt.Errorf("cluster: snapshot info: %w", err)
	}
	md := oi.Metadata
	pos, err1 := strconv.ParseUint(md[metaPos], 10, 64)
	size, err2 := strconv.ParseUint(md["bytes"], 10, 64)
	parts, err3 := strconv.Atoi(md["parts"])
	if err := errors.Join(err1, err2, err3); err != nil || md["prefix"] == "" {
		return SnapshotInfo{}, false, fmt.Errorf("cluster: snapshot description %v is not this version's: %v", md, err)
	}
	return SnapshotInfo{Pos: pos, Bytes: size, Node: md["node"], prefix: md["prefix"], parts: parts}, true, nil
}

// TakeSnapshot puts a snapshot of this node's store into the cluster,
// replacing the one there. One at a time per node.
func (n *Node) TakeSnapshot(ctx context.Context) (SnapshotInfo, error) {
	store, ok := n.applier().(Snapshotter)
	if !ok {
		return SnapshotInfo{}, errors.New("cluster: snapshot: no store attached, or it cannot make checkpoints")
	}
	select {
	case n.snapping <- struct{}{}:
		defer func() { <-n.snapping }()
	case <-ctx.Done():
		return SnapshotInfo{}, ctx.Err()
	}
	start := time.Now()
	tmp, err := os.MkdirTemp(n.dataDir, "snapshot.take-")
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("cluster: snapshot: %w", err)
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "store")
	pos, err := store.Checkpoint(dir)
	if err != nil {
		return SnapshotInfo{}, err
	}
	obs, err := n.snapStore(ctx)
	if err != nil {
		return SnapshotInfo{}, err
	}
	prev, hadPrev, _ := n.Snapshot(ctx)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(writeTar(pw, dir))
	}()
	info := SnapshotInfo{Pos: pos, Node: n.name, prefix: fmt.Sprintf("%s-%d-%d", snapObject, pos, time.Now().UnixNano())}
	err = n.upload(ctx, obs, &info, bufio.NewReaderSize(pr, 64<<10))
	pr.CloseWithError(errors.New("upload ended"))
	<-done
	if err != nil {
		n.dropParts(obs, info)
		return SnapshotInfo{}, fmt.Errorf("cluster: snapshot at %d: upload: %w", pos, err)
	}
	if hadPrev {
		n.dropParts(obs, prev) // a node loading it fails and retries with this one
	}
	info.Took = time.Since(start)
	n.log.Info("cluster: snapshot taken", "position", pos, "bytes", info.Bytes, "parts", info.parts, "took", info.Took.Round(time.Millisecond))
	return info, nil
}

// upload puts r in parts, then the description naming them (which makes
// the snapshot the current one).
func (n *Node) upload(ctx context.Context, obs jetstream.ObjectStore, info *SnapshotInfo, r *bufio.Reader) error {
	for {
		if _, err := r.Peek(1); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		// A chunk is one NATS message: it must fit max_payload, which is
		// max_effect_bytes and room for headers.
		chunk := uint32(min(128<<10, n.cfg.MaxEffectBytes))
		oi, err := obs.Put(ctx, jetstream.ObjectMeta{Name: fmt.Sprintf("%s.%d", info.prefix, info.parts),
			Opts: &jetstream.ObjectMetaOptions{ChunkSize: chunk}}, fullReader{io.LimitReader(r, partBytes)})
		if err != nil {
			return err
		}
		info.parts++
		info.Bytes += oi.Size
	}
	_, err := obs.Put(ctx, jetstream.ObjectMeta{Name: snapObject, Metadata: map[string]string{
		metaPos: strconv.FormatUint(info.Pos, 10), "node": info.Node, "prefix": info.prefix,
		"parts": strconv.Itoa(info.parts), "bytes": strconv.FormatUint(info.Bytes, 10)}}, bytes.NewReader(nil))
	return err
}

// fullReader fills each Read's buffer unless the input ends: Put makes one
// chunk of each Read, and a pipe hands out what each write gave it (tar
// headers of 512 bytes, 32 KiB copies), which would multiply the chunks.
type fullReader struct{ r io.Reader }

func (f fullReader) Read(p []byte) (int, error) {
	n, err := io.ReadFull(f.r, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil // the rest comes as io.EOF on the next Read
	}
	return n, err
}

// dropParts deletes a snapshot's parts (best effort: the bucket holds them
// until the next snapshot otherwise).
func (n *Node) dropParts(obs jetstream.ObjectStore, info SnapshotInfo) {
	ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
	defer cancel()
	for i := range info.parts {
		if err := obs.Delete(ctx, fmt.Sprintf("%s.%d", info.prefix, i)); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			n.log.Warn("cluster: deleting an old snapshot's part", "err", err)
		}
	}
}

// Bounds of a snapshot's load, each step retried within snapshot_timeout:
// a request to JetStream (the snapshot's description) gets snapAskTimeout,
// a part's download partTimeout. A JetStream that is restarting or moving a
// stream's leader may drop a request or stop a consumer without an error:
// with only snapshot_timeout (10 minutes by default) as the bound, a node
// would wait that long, silently, for what a retry gets in a second.
const (
	snapAskTimeout = 5 * time.Second
	// A part arrives at 1 MiB/s at least, and gets 10 s at least: parts of
	// 32 MiB download in about 0.3 s here (docs/cluster.md).
	partMinRate = 1 << 20
	partMinTime = 10 * time.Second
)

// partTimeout bounds the download of a part of size bytes.
func partTimeout(size uint64) time.Duration {
	return max(partMinTime, time.Duration(size/partMinRate)*time.Second)
}

// readParts streams a snapshot's parts, in order, into w. Each part has its
// own deadline (partTimeout): the object store's reader waits for a chunk
// until its context's deadline, whatever cancels the context.
func readParts(ctx context.Context, obs jetstream.ObjectStore, info SnapshotInfo, w io.Writer) error {
	left := info.Bytes
	for i := range info.parts {
		size := min(left, partBytes)
		left -= size
		if err := readPart(ctx, obs, fmt.Sprintf("%s.%d", info.prefix, i), partTimeout(size), w); err != nil {
			return fmt.Errorf("part %d: %w", i, err)
		}
	}
	return nil
}

func readPart(ctx context.Context, obs jetstream.ObjectStore, name string, d time.Duration, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	r, err := obs.Get(ctx, name)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, r)
	_ = r.Close()
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("not downloaded within %s: %w", d, err)
	}
	return err
}

// writeTar writes the regular files of dir (a checkpoint: flat) as a tar.
func writeTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := addFile(tw, dir, e.Name()); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, dir, name string) error {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: fi.Size(), ModTime: fi.ModTime(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// readTar unpacks a snapshot's tar into dir: flat regular files only.
func readTar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg || h.Name != filepath.Base(h.Name) || h.Name == ".." || h.Name == "." {
			return fmt.Errorf("snapshot: unexpected entry %q", h.Name)
		}
		f, err := os.OpenFile(filepath.Join(dir, h.Name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
}

// serveSnapshot is the owner's handler of snapKind: the request is the
// position the asking node needs (8 bytes); a snapshot that old or newer
// is taken in the background (it may outlast forward_timeout) unless the
// cluster holds one. The asker watches the bucket.
func (n *Node) serveSnapshot(ctx context.Context, req []byte) ([]byte, error) {
	if len(req) != 8 {
		return nil, errors.New("cluster: snapshot request: want 8 bytes")
	}
	need := binary.BigEndian.Uint64(req)
	if info, ok, err := n.Snapshot(ctx); err == nil && ok && info.Pos >= need {
		return nil, nil
	}
	select {
	case n.snapAsked <- struct{}{}:
	default: // one is asked for already
	}
	return nil, nil
}

// snapLoop runs on every node; it takes snapshots only while this node
// owns the log: when asked (serveSnapshot) and every snapshot_interval
// when the log moved since the last one.
func (n *Node) snapLoop() {
	defer n.loops.Done()
	var tick <-chan time.Time
	if n.cfg.SnapshotInterval > 0 {
		t := time.NewTicker(n.cfg.SnapshotInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick:
		case <-n.snapAsked:
		}
		store := n.applier()
		if store == nil || !n.IsOwner() {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.SnapshotTimeout)
		if info, ok, err := n.Snapshot(ctx); err == nil && ok && info.Pos >= store.Applied() {
			cancel()
			continue // nothing new since (a snapshot at the owner's position serves any ask)
		}
		if _, err := n.TakeSnapshot(ctx); err != nil && n.ctx.Err() == nil {
			n.log.Error("cluster: snapshot failed", "err", err)
		}
		cancel()
	}
}

// logStateWait is logState retried until the log answers or d passes (a
// starting node may come up before a quorum). It gives up early when
// nothing can answer: after a second with no route to another node, or,
// with grace, after metaGrace without a JetStream meta leader (a new
// cluster elects its first one only once every node listed is up: an
// empty node started before the others must not hold its start up). A log
// not created yet reads as empty unless create asks to wait for it.
func (n *Node) logStateWait(ctx context.Context, d time.Duration, create, grace bool) (first, last uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	said := start
	for {
		switch {
		case time.Since(start) > time.Second && n.srv.NumRoutes() == 0:
			return 0, 0, errors.New("cluster: no route to another node")
		case grace && time.Since(start) > metaGrace && !n.srv.JetStreamIsCurrent():
			return 0, 0, errors.New("cluster: no JetStream meta leader (a new cluster needs every node listed up)")
		}
		c, cc := context.WithTimeout(ctx, time.Second)
		first, last, leader, err := n.logState(c)
		cc()
		if errors.Is(err, jetstream.ErrStreamNotFound) && !create {
			return 0, 0, nil
		}
		if err == nil {
			if leader != "" {
				n.mu.Lock()
				n.setLeaderLocked(leader)
				n.mu.Unlock()
			}
			return first, last, nil
		}
		if time.Since(said) >= waitSay {
			said = time.Now()
			n.log.Info("cluster: waiting for the log to answer", "waited", time.Since(start).Round(time.Second), "up_to", d, "err", err)
		}
		select {
		case <-ctx.Done():
			return 0, 0, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitSay is how often a starting node that waits for JetStream says so.
const waitSay = 5 * time.Second

// metaGrace is how long logStateWait waits for a JetStream meta leader.
const metaGrace = 3 * time.Second

// baseAt1 is the node named by the base mark of the log's first position
// ("" when it has none or the log does not hold position 1).
func (n *Node) baseAt1(ctx context.Context) (string, error) {
	s, err := n.js.Stream(ctx, streamName)
	if err != nil {
		return "", fmt.Errorf("cluster: stream: %w", err)
	}
	m, err := s.GetMsg(ctx, 1)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cluster: read log position 1: %w", err)
	}
	return m.Header.Get(hdrBase), nil
}

// checkHistory refuses a store with history from before the cluster
// (applied 0, commits) when the log already started elsewhere: only the
// node that wrote the log's base mark may follow it with such a store.
func (n *Node) checkHistory(ctx context.Context, store Applier, last uint64) error {
	if store.Applied() != 0 || last == 0 || commits(store) == 0 {
		return nil
	}
	base, err := n.baseAt1(ctx)
	if err != nil {
		return err
	}
	if base == n.name {
		return nil
	}
	return fmt.Errorf("%w: the log holds %d positions and does not start from this store (base %q): move this data dir away to join empty, or start the cluster from it (cluster.seed)", ErrForeign, last, base)
}

// NeedsSnapshot tells a starting node, before it attaches its store,
// whether it must load a snapshot: its next position has left the log, or
// it is empty and the log starts from another node's history (a base
// mark). A store with history the log does not start from is an error
// (ErrForeign). It waits for the log (JetStream elects its leaders first)
// while this node has a route to another, up to snapshot_timeout; a node
// alone, or a log that does not answer, gets no: the tail finds out later
// (ErrBehind, 503, and the node loads a snapshot at its next start).
func (n *Node) NeedsSnapshot(ctx context.Context, store Applier) (bool, error) {
	// An empty node of a cluster with a seed waits for the seed's first
	// position: the seed decides what the log starts from.
	// A node with a store was part of the cluster (or is its seed): it waits
	// for the log as long as it has a route to another node.
	empty := store.Applied() == 0 && commits(store) == 0
	seedWait := n.cfg.Seed != "" && n.cfg.Seed != n.name && empty
	first, last, err := n.logStateWait(ctx, n.cfg.SnapshotTimeout, seedWait, empty && !seedWait)
	if err != nil {
		n.log.Warn("cluster: cannot tell whether this node needs a snapshot: the log does not answer", "err", err)
		return false, nil
	}
	if last == 0 && seedWait {
		n.log.Info("cluster: waiting for the seed to start the log", "seed", n.cfg.Seed)
		wait, cancel := context.WithTimeout(ctx, n.cfg.SnapshotTimeout)
		defer cancel()
		for last == 0 {
			select {
			case <-wait.Done():
				return false, fmt.Errorf("cluster: the seed %s did not start the log within cluster.snapshot_timeout: %w", n.cfg.Seed, wait.Err())
			case <-time.After(250 * time.Millisecond):
			}
			if first, last, err = n.logStateWait(wait, n.cfg.OwnerWait, true, false); err != nil {
				return false, fmt.Errorf("cluster: waiting for the seed %s to start the log: %w", n.cfg.Seed, err)
			}
		}
	}
	if err := n.checkHistory(ctx, store, last); err != nil {
		return false, err
	}
	applied := store.Applied()
	switch {
	case applied >= last:
		return false, nil
	case applied+1 < first:
		return true, nil
	case applied == 0 && commits(store) == 0:
		base, err := n.baseAt1(ctx)
		return base != "", err
	}
	return false, nil
}

// LoadSnapshot replaces the (closed) store in dataDir with the cluster's
// snapshot, asking the owner for a fresh one when the cluster holds none
// the log can be followed from (or none past after). Bounded by
// cluster.snapshot_timeout.
func (n *Node) LoadSnapshot(ctx context.Context, dataDir string, after uint64) (SnapshotInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.SnapshotTimeout)
	defer cancel()
	start := time.Now()
	var asked time.Time
	for {
		first, _, err := n.logStateWait(ctx, n.cfg.OwnerWait, true, false)
		if err != nil {
			return SnapshotInfo{}, fmt.Errorf("cluster: load a snapshot: the log does not answer: %w", err)
		}
		need := max(after, first-1) // a snapshot at need or later is followed by what the log holds
		c, cc := context.WithTimeout(ctx, snapAskTimeout)
		info, ok, err := n.Snapshot(c)
		cc()
		if err == nil && ok && info.Pos >= need {
			n.log.Info("cluster: downloading a snapshot", "position", info.Pos, "bytes", info.Bytes, "parts", info.parts, "from", info.Node)
			err := n.download(ctx, dataDir, info)
			if err == nil {
				info.Took = time.Since(start)
				n.log.Info("cluster: loaded a snapshot", "position", info.Pos, "bytes", info.Bytes, "from", info.Node, "took", info.Took.Round(time.Millisecond))
				return info, nil
			}
			if ctx.Err() != nil {
				return SnapshotInfo{}, err
			}
			// Replaced by a newer one meanwhile (its parts deleted), or a
			// failure on the way: take the current one again.
			n.log.Warn("cluster: loading a snapshot failed; trying again", "err", err)
		}
		if time.Since(asked) > 2*time.Second {
			asked = time.Now()
			n.log.Info("cluster: asking the owner for a snapshot", "at_least", need, "held", info.Pos, "err", err)
			if _, err := n.Forward(ctx, snapKind, binary.BigEndian.AppendUint64(nil, need)); err != nil {
				n.log.Warn("cluster: asking for a snapshot", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return SnapshotInfo{}, fmt.Errorf("cluster: no snapshot at position %d or later within cluster.snapshot_timeout: %w", need, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// download fetches the snapshot, unpacks it beside the store, checks its
// position and installs it in place of the store.
func (n *Node) download(ctx context.Context, dataDir string, info SnapshotInfo) error {
	tmp := filepath.Join(dataDir, snapTmp)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("cluster: snapshot: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return fmt.Errorf("cluster: snapshot: %w", err)
	}
	c, cc := context.WithTimeout(ctx, snapAskTimeout)
	obs, err := n.snapStore(c)
	cc()
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(readParts(ctx, obs, info, pw))
	}()
	err = readTar(pr, tmp)
	pr.CloseWithError(errors.New("download ended"))
	<-done
	if err != nil {
		return fmt.Errorf("cluster: snapshot: download: %w", err)
	}
	pos, err := storage.CheckpointApplied(tmp)
	if err != nil {
		return fmt.Errorf("cluster: snapshot: %w", err)
	}
	if pos < info.Pos { // replaced meanwhile by a newer one: fine; an older one is not
		return fmt.Errorf("cluster: snapshot holds position %d, its description says %d", pos, info.Pos)
	}
	return storage.InstallCheckpoint(dataDir, tmp)
}
