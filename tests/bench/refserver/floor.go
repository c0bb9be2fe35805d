// The benchmark's floor (refserver --floor): a snapshotter that does as
// little as the contract allows, so that the benchmark can show what the
// client, the gRPC transport and the durability target cost on their own,
// measured in the same run as the two real servers.
//
// It keeps snapshots in a map (key, kind, parent, labels, times), makes no
// directories and returns the mounts containerd's overlayfs snapshotter
// would return for them (paths under the root that do not exist). Every
// call that changes a snapshot appends one 4 KiB block to a preallocated
// journal under the root and fdatasyncs it before answering, as a durable
// server must; concurrent callers share one write and sync (group commit),
// as the best durable server would. The journal is never read back: this is
// a yardstick, not a snapshotter, and nothing outside the benchmark runs
// it. Served by the same code as the reference, the difference between the
// two is the reference's own work.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/filters"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/snapshots"
	"golang.org/x/sys/unix"
)

// newFloorSnapshotter starts the floor on `root` (which must exist).
func newFloorSnapshotter(root string) (*memorySnapshotter, error) {
	j, err := openJournal(filepath.Join(root, "journal"))
	if err != nil {
		return nil, err
	}
	return &memorySnapshotter{root: root, journal: j, snapshots: map[string]*record{}}, nil
}

// journal is a preallocated file that changes are appended to, one 4 KiB
// block each, wrapping around at the end. Appenders that arrive while a
// sync runs are written and synced together by the next one.
type journal struct {
	f    *os.File
	size int64

	mu      sync.Mutex
	pending [][]byte
	waiters []chan error
	kick    chan struct{}
	done    chan struct{}
	offset  int64 // only the sync loop uses it
}

const (
	journalBlock = 4096
	journalSize  = 64 << 20
)

func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	// Written out, not just allocated: a sync then flushes data, not extent
	// changes, as a database's preallocated log does.
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < journalSize; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros, off); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	j := &journal{f: f, size: journalSize, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go j.loop()
	return j, nil
}

// append returns once rec is on the disk.
func (j *journal) append(rec string) error {
	block := make([]byte, journalBlock)
	copy(block, rec)
	ch := make(chan error, 1)
	j.mu.Lock()
	j.pending = append(j.pending, block)
	j.waiters = append(j.waiters, ch)
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
	return <-ch
}

func (j *journal) loop() {
	defer close(j.done)
	for range j.kick {
		j.mu.Lock()
		blocks, waiters := j.pending, j.waiters
		j.pending, j.waiters = nil, nil
		j.mu.Unlock()
		if len(waiters) == 0 {
			continue
		}
		var err error
		for _, b := range blocks {
			if j.offset+journalBlock > j.size {
				j.offset = 0
			}
			if _, err = j.f.WriteAt(b, j.offset); err != nil {
				break
			}
			j.offset += journalBlock
		}
		if err == nil {
			err = unix.Fdatasync(int(j.f.Fd()))
		}
		for _, w := range waiters {
			w <- err
		}
	}
}

func (j *journal) close() {
	close(j.kick)
	<-j.done
	j.f.Close()
}

// record is one snapshot.
type record struct {
	id   uint64
	info snapshots.Info
}

// memorySnapshotter keeps snapshots in a map, one lock for all.
type memorySnapshotter struct {
	root    string
	journal *journal

	mu        sync.Mutex
	snapshots map[string]*record
	nextID    uint64
}

var _ snapshots.Snapshotter = (*memorySnapshotter)(nil)

func (s *memorySnapshotter) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.snapshots[key]
	if !ok {
		return snapshots.Info{}, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	return copyInfo(r.info), nil
}

func (s *memorySnapshotter) Update(ctx context.Context, info snapshots.Info, fieldpaths ...string) (snapshots.Info, error) {
	s.mu.Lock()
	r, ok := s.snapshots[info.Name]
	if !ok {
		s.mu.Unlock()
		return snapshots.Info{}, fmt.Errorf("snapshot %q: %w", info.Name, errdefs.ErrNotFound)
	}
	labels := copyLabels(r.info.Labels)
	if len(fieldpaths) == 0 {
		labels = copyLabels(info.Labels)
	}
	for _, path := range fieldpaths {
		switch {
		case path == "labels":
			labels = copyLabels(info.Labels)
		case strings.HasPrefix(path, "labels."):
			key := strings.TrimPrefix(path, "labels.")
			if v, ok := info.Labels[key]; ok {
				labels[key] = v
			} else {
				delete(labels, key)
			}
		default:
			s.mu.Unlock()
			return snapshots.Info{}, fmt.Errorf("cannot update %q field: %w", path, errdefs.ErrInvalidArgument)
		}
	}
	r.info.Labels = labels
	r.info.Updated = time.Now().UTC()
	out := copyInfo(r.info)
	s.mu.Unlock()
	return out, s.journal.append("update " + info.Name)
}

func (s *memorySnapshotter) Usage(ctx context.Context, key string) (snapshots.Usage, error) {
	if _, err := s.Stat(ctx, key); err != nil {
		return snapshots.Usage{}, err
	}
	return snapshots.Usage{}, nil
}

func (s *memorySnapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.snapshots[key]
	if !ok {
		return nil, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	return s.mountsLocked(r), nil
}

func (s *memorySnapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return s.create(snapshots.KindActive, key, parent, opts)
}

func (s *memorySnapshotter) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return s.create(snapshots.KindView, key, parent, opts)
}

func (s *memorySnapshotter) create(kind snapshots.Kind, key, parent string, opts []snapshots.Opt) ([]mount.Mount, error) {
	var base snapshots.Info
	for _, opt := range opts {
		if err := opt(&base); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	if _, ok := s.snapshots[key]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
	}
	if parent != "" {
		p, ok := s.snapshots[parent]
		if !ok {
			s.mu.Unlock()
			return nil, fmt.Errorf("parent %q: %w", parent, errdefs.ErrNotFound)
		}
		if p.info.Kind != snapshots.KindCommitted {
			s.mu.Unlock()
			return nil, fmt.Errorf("parent %q is not committed: %w", parent, errdefs.ErrInvalidArgument)
		}
	}
	s.nextID++
	now := time.Now().UTC()
	r := &record{id: s.nextID, info: snapshots.Info{
		Kind: kind, Name: key, Parent: parent, Labels: copyLabels(base.Labels), Created: now, Updated: now,
	}}
	s.snapshots[key] = r
	mounts := s.mountsLocked(r)
	s.mu.Unlock()
	return mounts, s.journal.append("create " + key)
}

func (s *memorySnapshotter) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	var base snapshots.Info
	for _, opt := range opts {
		if err := opt(&base); err != nil {
			return err
		}
	}
	s.mu.Lock()
	r, ok := s.snapshots[key]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	if r.info.Kind != snapshots.KindActive {
		s.mu.Unlock()
		return fmt.Errorf("snapshot %q is not active: %w", key, errdefs.ErrFailedPrecondition)
	}
	if _, ok := s.snapshots[name]; ok {
		s.mu.Unlock()
		return fmt.Errorf("snapshot %q: %w", name, errdefs.ErrAlreadyExists)
	}
	delete(s.snapshots, key)
	now := time.Now().UTC()
	r.info = snapshots.Info{
		Kind: snapshots.KindCommitted, Name: name, Parent: r.info.Parent,
		Labels: copyLabels(base.Labels), Created: now, Updated: now,
	}
	s.snapshots[name] = r
	s.mu.Unlock()
	return s.journal.append("commit " + key + " " + name)
}

func (s *memorySnapshotter) Remove(ctx context.Context, key string) error {
	s.mu.Lock()
	if _, ok := s.snapshots[key]; !ok {
		s.mu.Unlock()
		return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	// A scan, as a map has no child index; the benchmark removes leaves of
	// a few thousand snapshots at most.
	for _, r := range s.snapshots {
		if r.info.Parent == key {
			s.mu.Unlock()
			return fmt.Errorf("snapshot %q has children: %w", key, errdefs.ErrFailedPrecondition)
		}
	}
	delete(s.snapshots, key)
	s.mu.Unlock()
	return s.journal.append("remove " + key)
}

func (s *memorySnapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, fs ...string) error {
	filter, err := filters.ParseAll(fs...)
	if err != nil {
		return err
	}
	s.mu.Lock()
	var infos []snapshots.Info
	for _, r := range s.snapshots {
		if filter.Match(adapt(r.info)) {
			infos = append(infos, copyInfo(r.info))
		}
	}
	s.mu.Unlock()
	for _, info := range infos {
		if err := fn(ctx, info); err != nil {
			return err
		}
	}
	return nil
}

// Cleanup has nothing to reclaim: there are no directories.
func (s *memorySnapshotter) Cleanup(ctx context.Context) error { return nil }

// Close stops the journal's sync loop.
func (s *memorySnapshotter) Close() error {
	s.journal.close()
	return nil
}

// mountsLocked returns what containerd's overlayfs snapshotter returns for
// r: a bind mount without parents or for a view of one layer, otherwise
// one overlay mount with the ancestors nearest first.
func (s *memorySnapshotter) mountsLocked(r *record) []mount.Mount {
	var parents []string
	for p := r.info.Parent; p != ""; {
		pr := s.snapshots[p]
		parents = append(parents, s.fsPath(pr.id))
		p = pr.info.Parent
	}
	if len(parents) == 0 {
		flag := "rw"
		if r.info.Kind == snapshots.KindView {
			flag = "ro"
		}
		return []mount.Mount{{Source: s.fsPath(r.id), Type: "bind", Options: []string{flag, "rbind"}}}
	}
	var options []string
	if r.info.Kind == snapshots.KindActive {
		options = append(options,
			fmt.Sprintf("workdir=%s", filepath.Join(s.root, "snapshots", fmt.Sprint(r.id), "work")),
			fmt.Sprintf("upperdir=%s", s.fsPath(r.id)))
	} else if len(parents) == 1 {
		return []mount.Mount{{Source: parents[0], Type: "bind", Options: []string{"ro", "rbind"}}}
	}
	options = append(options, "lowerdir="+strings.Join(parents, ":"))
	return []mount.Mount{{Type: "overlay", Source: "overlay", Options: options}}
}

func (s *memorySnapshotter) fsPath(id uint64) string {
	return filepath.Join(s.root, "snapshots", fmt.Sprint(id), "fs")
}

func adapt(info snapshots.Info) filters.Adaptor {
	return filters.AdapterFunc(func(fieldpath []string) (string, bool) {
		if len(fieldpath) == 0 {
			return "", false
		}
		switch fieldpath[0] {
		case "kind":
			return strings.ToLower(info.Kind.String()), true
		case "name":
			return info.Name, true
		case "parent":
			return info.Parent, true
		case "labels":
			v, ok := info.Labels[strings.Join(fieldpath[1:], ".")]
			return v, ok
		}
		return "", false
	})
}

func copyInfo(info snapshots.Info) snapshots.Info {
	info.Labels = copyLabels(info.Labels)
	return info
}

func copyLabels(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}
