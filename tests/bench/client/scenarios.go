package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/snapshots"
	"golang.org/x/sys/unix"
)

// sizes are the scenario parameters; see the flags in main.go.
type sizes struct {
	chainDepth        int
	concurrentClients int
	concurrentPairs   int
	statKeys          int
	statOps           int
	mountsDepth       int
	mountsOps         int
	walkCount         int
	walkOps           int
	updateKeys        int
	updateOps         int
	removeLeaves      int
	removeFiles       int
	usageFiles        int
	usageOps          int
	memoryCounts      []int
	createConcurrency int
}

// scenario is one benchmark. setup, if set, runs once per daemon before
// the repetitions, for both servers at once. Each repetition uses fresh
// keys: prepare, if set, builds what it needs untimed, for both servers at
// once; then run times it, one server after the other, and returns one
// sample per row it measures.
type scenario struct {
	name    string
	setup   func(ctx context.Context, d *daemon, z *sizes) error
	prepare func(ctx context.Context, d *daemon, z *sizes, k keyspace) (interface{}, error)
	run     func(ctx context.Context, d *daemon, z *sizes, k keyspace, state interface{}) (map[string]*sample, error)
	once    bool // one repetition whatever --reps says
	// together runs the servers at the same time instead of one after the
	// other: for figures that are not timings (memory), to halve the wall
	// time of a long set-up.
	together bool
	// floor: the floor server runs it too (it has no files to write,
	// measure or delete, so only metadata scenarios).
	floor bool
}

func allScenarios() []scenario {
	return []scenario{
		{name: "chain", run: runChain, floor: true},
		{name: "concurrent", run: runConcurrent, floor: true},
		{name: "stat", prepare: prepareStat, run: runStat, floor: true},
		{name: "mounts", prepare: prepareMounts, run: runMounts, floor: true},
		{name: "walk", setup: setupWalk, run: runWalk, floor: true},
		{name: "update", prepare: prepareUpdate, run: runUpdate, floor: true},
		{name: "remove", prepare: prepareRemove, run: runRemove, floor: true},
		{name: "usage", prepare: prepareUsage, run: runUsage},
		{name: "memory", once: true, together: true, run: runMemory},
	}
}

// keyspace makes keys and names shaped like containerd's: committed names
// are chain ids ("sha256:<64 hex>"), active keys are the unpacker's
// "extract-<nanos>-<random> <chain id>". Every repetition gets its own.
type keyspace struct {
	prefix string
}

func (k keyspace) name(i int) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(k.prefix+"/"+strconv.Itoa(i))))
}

func (k keyspace) key(i int) string {
	return fmt.Sprintf("extract-%s-%d %s", k.prefix, i, k.name(i))
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first
// error; after an error no new calls start.
func parallel(n, workers int, fn func(i int) error) error {
	if workers < 1 {
		workers = 1
	}
	var (
		mu       sync.Mutex
		next     int
		firstErr error
		wg       sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if firstErr != nil || next >= n {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if err := fn(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// prepareLeaves creates n parentless active snapshots concurrently.
func prepareLeaves(ctx context.Context, d *daemon, k keyspace, n, workers int, labels func(i int) map[string]string) error {
	return parallel(n, workers, func(i int) error {
		var opts []snapshots.Opt
		if labels != nil {
			if l := labels(i); l != nil {
				opts = append(opts, snapshots.WithLabels(l))
			}
		}
		if _, err := d.sn.Prepare(ctx, k.key(i), "", opts...); err != nil {
			return fmt.Errorf("prepare %q: %w", k.key(i), err)
		}
		return nil
	})
}

// commitLeaves commits the n snapshots prepareLeaves made.
func commitLeaves(ctx context.Context, d *daemon, k keyspace, n, workers int) error {
	return parallel(n, workers, func(i int) error {
		if err := d.sn.Commit(ctx, k.name(i), k.key(i)); err != nil {
			return fmt.Errorf("commit %q: %w", k.key(i), err)
		}
		return nil
	})
}

// buildChain prepares and commits a chain of depth empty layers and
// returns the name of the top one.
func buildChain(ctx context.Context, d *daemon, k keyspace, depth int) (string, error) {
	parent := ""
	for i := 0; i < depth; i++ {
		if _, err := d.sn.Prepare(ctx, k.key(i), parent); err != nil {
			return "", fmt.Errorf("prepare %q: %w", k.key(i), err)
		}
		if err := d.sn.Commit(ctx, k.name(i), k.key(i)); err != nil {
			return "", fmt.Errorf("commit %q: %w", k.key(i), err)
		}
		parent = k.name(i)
	}
	return parent, nil
}

// 1. chain: Prepare+Commit of a chain of empty layers, as an image pull
// unpacks one layer after the other.
func runChain(ctx context.Context, d *daemon, z *sizes, k keyspace, _ interface{}) (map[string]*sample, error) {
	var pairs, prepares, commits recorder
	parent := ""
	cpu := d.startCPU()
	start := time.Now()
	for i := 0; i < z.chainDepth; i++ {
		t0 := time.Now()
		if _, err := d.sn.Prepare(ctx, k.key(i), parent); err != nil {
			return nil, fmt.Errorf("prepare %q: %w", k.key(i), err)
		}
		t1 := time.Now()
		if err := d.sn.Commit(ctx, k.name(i), k.key(i)); err != nil {
			return nil, fmt.Errorf("commit %q: %w", k.key(i), err)
		}
		t2 := time.Now()
		prepares.add(t1.Sub(t0))
		commits.add(t2.Sub(t1))
		pairs.add(t2.Sub(t0))
		parent = k.name(i)
	}
	chain := cpu.done(pairs.sample(time.Since(start)))
	var prepareWall, commitWall time.Duration
	for i := range prepares.lats {
		prepareWall += prepares.lats[i]
		commitWall += commits.lats[i]
	}
	return map[string]*sample{
		"chain":         chain,
		"chain-prepare": prepares.sample(prepareWall),
		"chain-commit":  commits.sample(commitWall),
	}, nil
}

// 2. concurrent: clients callers at once, each doing Prepare+Commit pairs of
// parentless layers, over one connection as containerd multiplexes its
// callers over one connection to a proxy plugin.
func runConcurrent(ctx context.Context, d *daemon, z *sizes, k keyspace, _ interface{}) (map[string]*sample, error) {
	var pairs recorder
	total := z.concurrentClients * z.concurrentPairs
	cpu := d.startCPU()
	start := time.Now()
	err := parallel(total, z.concurrentClients, func(i int) error {
		t0 := time.Now()
		if _, err := d.sn.Prepare(ctx, k.key(i), ""); err != nil {
			return fmt.Errorf("prepare %q: %w", k.key(i), err)
		}
		if err := d.sn.Commit(ctx, k.name(i), k.key(i)); err != nil {
			return fmt.Errorf("commit %q: %w", k.key(i), err)
		}
		pairs.add(time.Since(t0))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]*sample{"concurrent": cpu.done(pairs.sample(time.Since(start)))}, nil
}

// 3. stat: Stat of random keys among statKeys active snapshots.
func prepareStat(ctx context.Context, d *daemon, z *sizes, k keyspace) (interface{}, error) {
	return nil, prepareLeaves(ctx, d, k, z.statKeys, z.createConcurrency, nil)
}

func runStat(ctx context.Context, d *daemon, z *sizes, k keyspace, _ interface{}) (map[string]*sample, error) {
	// The same sequence of keys for both servers.
	r := rand.New(rand.NewSource(int64(z.statKeys)))
	var stats recorder
	cpu := d.startCPU()
	start := time.Now()
	for i := 0; i < z.statOps; i++ {
		key := k.key(r.Intn(z.statKeys))
		t0 := time.Now()
		if _, err := d.sn.Stat(ctx, key); err != nil {
			return nil, fmt.Errorf("stat %q: %w", key, err)
		}
		stats.add(time.Since(t0))
	}
	return map[string]*sample{"stat": cpu.done(stats.sample(time.Since(start)))}, nil
}

// 4. mounts: Mounts of an active snapshot on a chain of mountsDepth layers.
func prepareMounts(ctx context.Context, d *daemon, z *sizes, k keyspace) (interface{}, error) {
	top, err := buildChain(ctx, d, k, z.mountsDepth)
	if err != nil {
		return nil, err
	}
	key := k.key(z.mountsDepth)
	if _, err := d.sn.Prepare(ctx, key, top); err != nil {
		return nil, fmt.Errorf("prepare %q: %w", key, err)
	}
	return key, nil
}

func runMounts(ctx context.Context, d *daemon, z *sizes, k keyspace, state interface{}) (map[string]*sample, error) {
	key := state.(string)
	var calls recorder
	cpu := d.startCPU()
	start := time.Now()
	for i := 0; i < z.mountsOps; i++ {
		t0 := time.Now()
		m, err := d.sn.Mounts(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("mounts %q: %w", key, err)
		}
		calls.add(time.Since(t0))
		if i == 0 && (len(m) != 1 || m[0].Type != "overlay") {
			return nil, fmt.Errorf("mounts %q: want one overlay mount, got %+v", key, m)
		}
	}
	return map[string]*sample{"mounts": cpu.done(calls.sample(time.Since(start)))}, nil
}

// walkLabel marks one snapshot in walkMatchEvery for the filtered List.
const (
	walkLabel      = "containerd.io/snapshot/bench.match"
	walkMatchEvery = 100
)

// 5. walk, set up once per daemon: walkCount active snapshots; Lists do
// not change them, so the repetitions share them.
func setupWalk(ctx context.Context, d *daemon, z *sizes) error {
	return prepareLeaves(ctx, d, keyspace{prefix: "walk"}, z.walkCount, z.createConcurrency,
		func(i int) map[string]string {
			if i%walkMatchEvery == 0 {
				return map[string]string{walkLabel: "yes"}
			}
			return nil
		})
}

func runWalk(ctx context.Context, d *daemon, z *sizes, k keyspace, _ interface{}) (map[string]*sample, error) {
	filter := fmt.Sprintf(`labels."%s"==yes`, walkLabel)
	wantFiltered := (z.walkCount + walkMatchEvery - 1) / walkMatchEvery
	out := map[string]*sample{}
	for _, c := range []struct {
		row     string
		filters []string
		want    int
	}{
		{"walk-full", nil, z.walkCount},
		{"walk-filtered", []string{filter}, wantFiltered},
	} {
		var lists recorder
		cpu := d.startCPU()
		start := time.Now()
		for i := 0; i < z.walkOps; i++ {
			n := 0
			t0 := time.Now()
			err := d.sn.Walk(ctx, func(context.Context, snapshots.Info) error {
				n++
				return nil
			}, c.filters...)
			if err != nil {
				return nil, fmt.Errorf("list %q: %w", c.filters, err)
			}
			lists.add(time.Since(t0))
			if n != c.want {
				return nil, fmt.Errorf("list %q: %d snapshots, want %d", c.filters, n, c.want)
			}
		}
		out[c.row] = cpu.done(lists.sample(time.Since(start)))
	}
	return out, nil
}

// 6. update: label updates of random committed snapshots among
// updateKeys, with the label prefix containerd passes to snapshotters.
func prepareUpdate(ctx context.Context, d *daemon, z *sizes, k keyspace) (interface{}, error) {
	if err := prepareLeaves(ctx, d, k, z.updateKeys, z.createConcurrency, nil); err != nil {
		return nil, err
	}
	return nil, commitLeaves(ctx, d, k, z.updateKeys, z.createConcurrency)
}

func runUpdate(ctx context.Context, d *daemon, z *sizes, k keyspace, _ interface{}) (map[string]*sample, error) {
	const label = "containerd.io/snapshot/bench.update"
	r := rand.New(rand.NewSource(int64(z.updateKeys)))
	var updates recorder
	cpu := d.startCPU()
	start := time.Now()
	for i := 0; i < z.updateOps; i++ {
		name := k.name(r.Intn(z.updateKeys))
		info := snapshots.Info{Name: name, Labels: map[string]string{label: strconv.Itoa(i)}}
		t0 := time.Now()
		if _, err := d.sn.Update(ctx, info, "labels."+label); err != nil {
			return nil, fmt.Errorf("update %q: %w", name, err)
		}
		updates.add(time.Since(t0))
	}
	return map[string]*sample{"update": cpu.done(updates.sample(time.Since(start)))}, nil
}

// 7. remove: Remove of removeLeaves leaves one after the other, as
// containerd's garbage collector does, then the Cleanup it calls after;
// and Remove of one snapshot holding removeFiles files (not on the floor
// server, which has no files).
func prepareRemove(ctx context.Context, d *daemon, z *sizes, k keyspace) (interface{}, error) {
	if err := prepareLeaves(ctx, d, k, z.removeLeaves, z.createConcurrency, nil); err != nil {
		return nil, err
	}
	if d.floor {
		return nil, nil
	}
	key := k.key(z.removeLeaves)
	dir, err := prepareWithFiles(ctx, d, key, z.removeFiles, 200)
	if err != nil {
		return nil, err
	}
	return snapshotWithFiles{key: key, dir: dir}, nil
}

// snapshotWithFiles is an active snapshot that prepareWithFiles filled.
type snapshotWithFiles struct {
	key string
	dir string // its directory, the bind mount source
}

func runRemove(ctx context.Context, d *daemon, z *sizes, k keyspace, state interface{}) (map[string]*sample, error) {
	var removes recorder
	cpu := d.startCPU()
	start := time.Now()
	for i := 0; i < z.removeLeaves; i++ {
		t0 := time.Now()
		if err := d.sn.Remove(ctx, k.key(i)); err != nil {
			return nil, fmt.Errorf("remove %q: %w", k.key(i), err)
		}
		removes.add(time.Since(t0))
	}
	out := map[string]*sample{"remove-leaves": cpu.done(removes.sample(time.Since(start)))}
	t0 := time.Now()
	if err := d.cleanup(ctx); err != nil {
		return nil, fmt.Errorf("cleanup: %w", err)
	}
	cleanup := time.Since(t0)
	out["remove-leaves-cleanup"] = single(cleanup)
	// What a garbage collection pass that removes them costs in all.
	out["remove-leaves-gc"] = &sample{ops: z.removeLeaves, wall: out["remove-leaves"].wall + cleanup}
	if d.floor {
		return out, nil
	}

	big, err := removeBig(ctx, d, z, state.(snapshotWithFiles))
	if err != nil {
		return nil, err
	}
	for row, s := range big {
		out[row] = s
	}
	return out, nil
}

// removeBig times Remove of a snapshot holding removeFiles files, then
// Cleanup as containerd's garbage collector calls it after removing, and
// the time from the start of Remove until the filesystem has the files'
// inodes back (statfs, polled every millisecond while Cleanup runs). The
// files are empty, so freed inodes, not blocks, show the space coming
// back; the threshold allows for other users of the filesystem.
func removeBig(ctx context.Context, d *daemon, z *sizes, big snapshotWithFiles) (map[string]*sample, error) {
	key, fsDir := big.key, big.dir
	before, err := freeInodes(d.root)
	if err != nil {
		return nil, err
	}
	want := before + uint64(float64(z.removeFiles)*0.95)

	t0 := time.Now()
	if err := d.sn.Remove(ctx, key); err != nil {
		return nil, fmt.Errorf("remove %q: %w", key, err)
	}
	removeDone := time.Now()
	freed := make(chan time.Duration, 1)
	pollErr := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(10 * time.Minute)
		for {
			free, err := freeInodes(d.root)
			if err != nil {
				pollErr <- err
				return
			}
			if free >= want {
				freed <- time.Since(t0)
				return
			}
			if time.Now().After(deadline) {
				pollErr <- fmt.Errorf("remove %q: %d of %d inodes free after 10 minutes (%s still exists: %v)",
					key, free-before, z.removeFiles, fsDir, exists(fsDir))
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	t1 := time.Now()
	if err := d.cleanup(ctx); err != nil {
		return nil, fmt.Errorf("cleanup: %w", err)
	}
	cleanup := time.Since(t1)
	var free time.Duration
	select {
	case free = <-freed:
	case err := <-pollErr:
		return nil, err
	}
	return map[string]*sample{
		"remove-big-call":    single(removeDone.Sub(t0)),
		"remove-big-cleanup": single(cleanup),
		"remove-big-free":    single(free),
	}, nil
}

// 8. usage: Usage of an active snapshot holding usageFiles files, and
// `du -s` of the same directory.
func prepareUsage(ctx context.Context, d *daemon, z *sizes, k keyspace) (interface{}, error) {
	key := k.key(0)
	dir, err := prepareWithFiles(ctx, d, key, z.usageFiles, 100)
	if err != nil {
		return nil, err
	}
	return snapshotWithFiles{key: key, dir: dir}, nil
}

func runUsage(ctx context.Context, d *daemon, z *sizes, k keyspace, state interface{}) (map[string]*sample, error) {
	key, fsDir := state.(snapshotWithFiles).key, state.(snapshotWithFiles).dir
	var u snapshots.Usage
	usage := func() (time.Duration, error) {
		t0 := time.Now()
		var err error
		u, err = d.sn.Usage(ctx, key)
		if err != nil {
			return 0, fmt.Errorf("usage %q: %w", key, err)
		}
		return time.Since(t0), nil
	}
	du := func() (time.Duration, error) {
		t0 := time.Now()
		if out, err := exec.Command("du", "-s", fsDir).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("du -s %s: %v: %s", fsDir, err, out)
		}
		return time.Since(t0), nil
	}
	// Untimed: the tree was just written, and the first walk over it meets
	// its writeback; neither side should pay for that alone.
	if _, err := usage(); err != nil {
		return nil, err
	}
	if _, err := du(); err != nil {
		return nil, err
	}
	var usages recorder
	cpu := d.startCPU()
	start := time.Now()
	for i := 0; i < z.usageOps; i++ {
		lat, err := usage()
		if err != nil {
			return nil, err
		}
		usages.add(lat)
	}
	usageSample := cpu.done(usages.sample(time.Since(start)))
	// Every file, every directory and the root of the tree.
	if want := int64(z.usageFiles + (z.usageFiles+99)/100 + 1); u.Inodes != want {
		warnf("%s: usage of %q reports %d inodes; the tree has %d", d.label, key, u.Inodes, want)
	}
	// Against `du -s`, the calls alternate, so both walk the tree in the
	// same state of the caches and the disk.
	var paired, dus recorder
	var pairedWall, duWall time.Duration
	for i := 0; i < z.usageOps; i++ {
		lat, err := usage()
		if err != nil {
			return nil, err
		}
		paired.add(lat)
		pairedWall += lat
		if lat, err = du(); err != nil {
			return nil, err
		}
		dus.add(lat)
		duWall += lat
	}
	return map[string]*sample{
		"usage":       usageSample,
		"usage-vs-du": paired.sample(pairedWall),
		"du":          dus.sample(duWall),
	}, nil
}

// 9. memory: resident memory after creating each count of parentless
// active snapshots (cumulative, on one daemon), and after a full List of
// them as containerd's garbage collector does.
func runMemory(ctx context.Context, d *daemon, z *sizes, k keyspace, _ interface{}) (map[string]*sample, error) {
	out := map[string]*sample{}
	record := func(name string, count int) error {
		m, err := d.memory()
		if err != nil {
			return err
		}
		out[fmt.Sprintf("%s@%d", name, count)] = &sample{value: float64(m.rss)}
		out[fmt.Sprintf("%s-anon@%d", name, count)] = &sample{value: float64(m.anon)}
		return nil
	}
	if err := record("rss", 0); err != nil {
		return nil, err
	}
	have := 0
	var createTime time.Duration
	for _, count := range z.memoryCounts {
		if count <= have {
			continue
		}
		base := have
		t0 := time.Now()
		err := parallel(count-base, z.createConcurrency, func(i int) error {
			key := k.key(base + i)
			if _, err := d.sn.Prepare(ctx, key, ""); err != nil {
				return fmt.Errorf("prepare %q: %w", key, err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		createTime += time.Since(t0)
		have = count
		out[fmt.Sprintf("create@%d", count)] = &sample{ops: count, wall: createTime}
		if err := record("rss", count); err != nil {
			return nil, err
		}

		n := 0
		if err := d.sn.Walk(ctx, func(context.Context, snapshots.Info) error { n++; return nil }); err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		if n != count {
			return nil, fmt.Errorf("list: %d snapshots, want %d", n, count)
		}
		if err := record("rss-list", count); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// prepareWithFiles prepares a parentless active snapshot and writes files
// empty files into its directory, perDir to a subdirectory, through the
// source of the bind mount it returns (a parentless active snapshot's
// directory is its bind source, so nothing is mounted).
func prepareWithFiles(ctx context.Context, d *daemon, key string, files, perDir int) (string, error) {
	m, err := d.sn.Prepare(ctx, key, "")
	if err != nil {
		return "", fmt.Errorf("prepare %q: %w", key, err)
	}
	dir, err := bindSource(m)
	if err != nil {
		return "", fmt.Errorf("prepare %q: %w", key, err)
	}
	var sub string
	for i := 0; i < files; i++ {
		if i%perDir == 0 {
			sub = filepath.Join(dir, fmt.Sprintf("d%05d", i/perDir))
			if err := os.Mkdir(sub, 0o755); err != nil {
				return "", err
			}
		}
		p := filepath.Join(sub, fmt.Sprintf("f%05d", i%perDir))
		fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return "", &os.PathError{Op: "create", Path: p, Err: err}
		}
		unix.Close(fd)
	}
	return dir, nil
}

// syncFS writes back everything dirty on path's filesystem, so that a timed
// phase does not pay for the writeback of its set-up.
func syncFS(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncfs %s: %w", path, err)
	}
	return nil
}

func bindSource(m []mount.Mount) (string, error) {
	if len(m) != 1 || m[0].Type != "bind" || m[0].Source == "" {
		return "", fmt.Errorf("want one bind mount, got %+v", m)
	}
	return m[0].Source, nil
}

func freeInodes(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return st.Ffree, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
