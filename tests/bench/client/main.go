// Command snapshot-bench measures two snapshotter daemons side by side, our
// daemon and the reference server (containerd 1.6's overlayfs snapshotter,
// tests/bench/refserver), through containerd's own proxy client
// (snapshots/proxy) over unix sockets, exactly as containerd drives a
// proxy_plugins snapshotter. With --floor it also measures the floor
// server (tests/bench/refserver --floor) on the scenarios it can serve, to show
// what the client, the transport and one synced write per change cost
// alone: the most any server could reach over the reference.
//
// For each scenario it starts both daemons, each on a fresh root under
// --work-dir (so both are on the same filesystem), runs --reps repetitions
// alternating which server goes first, each repetition on fresh keys, stops
// the daemons and removes their roots. It prints a Markdown report: per row
// the median over repetitions of ops/s, p50 and p99 latency for each server
// and the ratio ours/reference of throughput (>1 means ours is faster),
// then per row the CPU time per operation of each daemon and of the client
// itself over the timed calls. Progress goes to stderr. It needs root only
// for what the daemons need.
//
// Usage: snapshot-bench --ours BINARY --reference BINARY --work-dir DIR [flags]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	oursBin  = flag.String("ours", "", "our daemon binary, run as BINARY --address SOCK --root DIR (required)")
	refBin   = flag.String("reference", "", "reference server binary, run the same way (required)")
	oursName = flag.String("ours-name", "cpp-overlay", "our daemon's name in the report")
	refName  = flag.String("reference-name", "containerd 1.6 overlayfs", "the reference's name in the report")
	floorBin = flag.String("floor", "", "if set, the reference server binary to run with --floor as the floor server "+
		"(tests/bench/refserver), on the scenarios it can serve: chain, concurrent, stat, mounts, walk, update and the leaves of remove")
	workDir       = flag.String("work-dir", "", "roots, sockets and logs go here; it must be on the filesystem to measure (required)")
	memoryWorkDir = flag.String("memory-work-dir", "", "if set, the memory scenario's roots go here instead of --work-dir "+
		"(e.g. a tmpfs: resident memory does not depend on the disk, and creating the snapshots is much faster without fsync cost)")
	reps    = flag.Int("reps", 3, "repetitions per scenario; the report shows the median (memory runs once)")
	quick   = flag.Bool("quick", false, "small sizes for a smoke run; explicit size flags still win")
	only    = flag.String("scenarios", "all", "comma-separated scenarios to run: chain,concurrent,stat,mounts,walk,update,remove,usage,memory")
	timeout = flag.Duration("timeout", 60*time.Minute, "bound on the whole run")

	chainDepth        = flag.Int("chain-depth", 0, "chain: layers in the chain (default 256, quick 32)")
	concurrentClients = flag.Int("concurrent-clients", 0, "concurrent: callers at once (default 8, quick 8)")
	concurrentPairs   = flag.Int("concurrent-pairs", 0, "concurrent: Prepare+Commit pairs per caller (default 64, quick 8)")
	statKeys          = flag.Int("stat-keys", 0, "stat: snapshots to pick from (default 1000, quick 100)")
	statOps           = flag.Int("stat-ops", 0, "stat: Stat calls (default 10000, quick 1000)")
	mountsDepth       = flag.Int("mounts-depth", 0, "mounts: committed layers below the active snapshot (default 128, quick 16)")
	mountsOps         = flag.Int("mounts-ops", 0, "mounts: Mounts calls (default 5000, quick 500)")
	walkCount         = flag.Int("walk-count", 0, "walk: snapshots to list (default 10000, quick 1000)")
	walkOps           = flag.Int("walk-ops", 0, "walk: Lists of each kind (default 20, quick 5)")
	updateKeys        = flag.Int("update-keys", 0, "update: committed snapshots to pick from (default 100, quick 20)")
	updateOps         = flag.Int("update-ops", 0, "update: Update calls (default 1000, quick 100)")
	removeLeaves      = flag.Int("remove-leaves", 0, "remove: leaves removed one by one (default 1000, quick 100)")
	removeFiles       = flag.Int("remove-files", 0, "remove: files in the big snapshot (default 200000, quick 5000)")
	usageFiles        = flag.Int("usage-files", 0, "usage: files in the active snapshot (default 20000, quick 2000)")
	usageOps          = flag.Int("usage-ops", 0, "usage: Usage calls, and du -s runs (default 20, quick 5)")
	memoryCounts      = flag.String("memory-counts", "", "memory: snapshot counts to measure at (default 10000,100000, quick 500,1000)")
	createConcurrency = flag.Int("create-concurrency", 16, "concurrent Prepares when creating many snapshots for set-up")
)

var (
	warningsMu sync.Mutex
	warnings   []string
)

// warnf reports something odd that does not invalidate the timings; it
// goes to stderr and under the report's table.
func warnf(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	log.Print("warning: " + msg)
	warningsMu.Lock()
	warnings = append(warnings, msg)
	warningsMu.Unlock()
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("snapshot-bench: ")
	flag.Parse()
	if *oursBin == "" || *refBin == "" || *workDir == "" {
		fmt.Fprintln(os.Stderr, "snapshot-bench: --ours, --reference and --work-dir are required")
		flag.Usage()
		os.Exit(2)
	}
	if *reps < 1 {
		log.Fatal("--reps must be at least 1")
	}
	z, err := resolveSizes()
	if err != nil {
		log.Fatal(err)
	}
	selected, err := selectScenarios(*only)
	if err != nil {
		log.Fatal(err)
	}
	servers := []server{
		{id: "ours", label: *oursName, binary: *oursBin},
		{id: "reference", label: *refName, binary: *refBin},
	}
	if *floorBin != "" {
		servers = append(servers, server{id: "floor", label: "floor", binary: *floorBin, args: []string{"--floor"}, floor: true})
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-signals
		log.Printf("%v: stopping", sig)
		cancel()
	}()

	res := newResults()
	failed := false
	for _, sc := range selected {
		if err := runScenario(ctx, sc, servers, z, res); err != nil {
			log.Printf("scenario %s failed: %v", sc.name, err)
			res.fail(sc.name, err)
			failed = true
		}
		if ctx.Err() != nil {
			break
		}
	}
	writeReport(os.Stdout, servers, z, res, selected)
	if failed || ctx.Err() != nil {
		os.Exit(1)
	}
}

func resolveSizes() (*sizes, error) {
	pick := func(v, full, small int) int {
		if v > 0 {
			return v
		}
		if *quick {
			return small
		}
		return full
	}
	z := &sizes{
		chainDepth:        pick(*chainDepth, 256, 32),
		concurrentClients: pick(*concurrentClients, 8, 8),
		concurrentPairs:   pick(*concurrentPairs, 64, 8),
		statKeys:          pick(*statKeys, 1000, 100),
		statOps:           pick(*statOps, 10000, 1000),
		mountsDepth:       pick(*mountsDepth, 128, 16),
		mountsOps:         pick(*mountsOps, 5000, 500),
		walkCount:         pick(*walkCount, 10000, 1000),
		walkOps:           pick(*walkOps, 20, 5),
		updateKeys:        pick(*updateKeys, 100, 20),
		updateOps:         pick(*updateOps, 1000, 100),
		removeLeaves:      pick(*removeLeaves, 1000, 100),
		removeFiles:       pick(*removeFiles, 200000, 5000),
		usageFiles:        pick(*usageFiles, 20000, 2000),
		usageOps:          pick(*usageOps, 20, 5),
		createConcurrency: *createConcurrency,
	}
	counts := *memoryCounts
	if counts == "" {
		counts = "10000,100000"
		if *quick {
			counts = "500,1000"
		}
	}
	for _, f := range strings.Split(counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--memory-counts: %q is not a positive count", f)
		}
		if len(z.memoryCounts) > 0 && n <= z.memoryCounts[len(z.memoryCounts)-1] {
			return nil, fmt.Errorf("--memory-counts must increase: %q", counts)
		}
		z.memoryCounts = append(z.memoryCounts, n)
	}
	return z, nil
}

func selectScenarios(list string) ([]scenario, error) {
	all := allScenarios()
	if list == "all" || list == "" {
		return all, nil
	}
	want := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		want[strings.TrimSpace(name)] = true
	}
	var out []scenario
	for _, sc := range all {
		if want[sc.name] {
			out = append(out, sc)
			delete(want, sc.name)
		}
	}
	for name := range want {
		return nil, fmt.Errorf("--scenarios: unknown scenario %q", name)
	}
	return out, nil
}

// runScenario starts both daemons on fresh roots, runs the set-up and the
// repetitions, and stops the daemons (removing their roots) whatever
// happens.
func runScenario(ctx context.Context, sc scenario, servers []server, z *sizes, res *results) (err error) {
	log.Printf("scenario %s", sc.name)
	started := time.Now()
	var daemons []*daemon
	defer func() {
		for _, d := range daemons {
			if stopErr := d.stop(); stopErr != nil && err == nil {
				err = stopErr
			}
		}
		log.Printf("scenario %s: %.1fs", sc.name, time.Since(started).Seconds())
	}()
	for _, s := range servers {
		if s.floor && !sc.floor {
			continue
		}
		d, err := startDaemon(s, scenarioDir(sc), sc.name+"-"+s.id)
		if err != nil {
			return err
		}
		daemons = append(daemons, d)
	}
	if sc.setup != nil {
		err := onEach(daemons, func(d *daemon) error {
			t0 := time.Now()
			if err := sc.setup(ctx, d, z); err != nil {
				return fmt.Errorf("%s: set-up: %w", d.label, withDeath(d, err))
			}
			log.Printf("  %s: set-up %.1fs", d.label, time.Since(t0).Seconds())
			return nil
		})
		if err != nil {
			return err
		}
	}
	n := *reps
	if sc.once {
		n = 1
	}
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	for r := 0; r < n; r++ {
		k := keyspace{prefix: fmt.Sprintf("%s-%s-%d", runID, sc.name, r)}
		states := map[*daemon]interface{}{}
		var statesMu sync.Mutex
		if sc.prepare != nil {
			err := onEach(daemons, func(d *daemon) error {
				state, err := sc.prepare(ctx, d, z, k)
				if err != nil {
					return fmt.Errorf("%s: repetition %d: set-up: %w", d.label, r+1, withDeath(d, err))
				}
				statesMu.Lock()
				states[d] = state
				statesMu.Unlock()
				return nil
			})
			if err != nil {
				return err
			}
		}
		if sc.setup != nil || sc.prepare != nil {
			if err := syncFS(scenarioDir(sc)); err != nil {
				return err
			}
		}
		one := func(d *daemon) error {
			t0 := time.Now()
			samples, err := sc.run(ctx, d, z, k, states[d])
			if err != nil {
				return fmt.Errorf("%s: repetition %d: %w", d.label, r+1, withDeath(d, err))
			}
			res.add(sc.name, d.id, samples)
			log.Printf("  %s: repetition %d/%d %.1fs", d.label, r+1, n, time.Since(t0).Seconds())
			return nil
		}
		if sc.together {
			if err := onEach(daemons, one); err != nil {
				return err
			}
			continue
		}
		// Each repetition starts with another server.
		for i := range daemons {
			d := daemons[(r+i)%len(daemons)]
			if err := one(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// scenarioDir is where a scenario's daemons get their roots.
func scenarioDir(sc scenario) string {
	if sc.name == "memory" && *memoryWorkDir != "" {
		return *memoryWorkDir
	}
	return *workDir
}

// onEach runs fn for every daemon at once and returns the first error.
func onEach(daemons []*daemon, fn func(d *daemon) error) error {
	errs := make([]error, len(daemons))
	var wg sync.WaitGroup
	for i, d := range daemons {
		wg.Add(1)
		go func(i int, d *daemon) {
			defer wg.Done()
			errs[i] = fn(d)
		}(i, d)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// withDeath adds the daemon's log to err if the daemon has died.
func withDeath(d *daemon, err error) error {
	if dead := d.alive(); dead != nil {
		return fmt.Errorf("%w\n%v", err, dead)
	}
	return err
}

// results holds every repetition's samples: scenario → server → row.
type results struct {
	mu      sync.Mutex
	samples map[string]map[string]map[string][]*sample
	errors  map[string]error
}

func newResults() *results {
	return &results{samples: map[string]map[string]map[string][]*sample{}, errors: map[string]error{}}
}

func (r *results) add(sc, server string, rows map[string]*sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.samples[sc] == nil {
		r.samples[sc] = map[string]map[string][]*sample{}
	}
	if r.samples[sc][server] == nil {
		r.samples[sc][server] = map[string][]*sample{}
	}
	for row, s := range rows {
		r.samples[sc][server][row] = append(r.samples[sc][server][row], s)
	}
}

func (r *results) fail(sc string, err error) { r.errors[sc] = err }

func (r *results) summary(sc, server, row string) (summary, bool) {
	return summarize(r.samples[sc][server][row])
}

// reportRow is a row of the report: a scenario's row of our server's
// results against a row of another server's (the reference's, or for
// `du -s`, ours).
type reportRow struct {
	scenario, label   string
	oursRow           string
	refServer, refRow string
}

// writeReport writes the Markdown tables.
func writeReport(w io.Writer, servers []server, z *sizes, res *results, selected []scenario) {
	ours, ref := servers[0], servers[1]
	n := func(v int) string { return groupThousands(v) }
	rows := []reportRow{
		{"chain", fmt.Sprintf("chain: Prepare+Commit, %s-deep chain", n(z.chainDepth)), "chain", "reference", "chain"},
		{"chain", "chain: Prepare alone", "chain-prepare", "reference", "chain-prepare"},
		{"chain", "chain: Commit alone", "chain-commit", "reference", "chain-commit"},
		{"concurrent", fmt.Sprintf("concurrent: %d callers × %s Prepare+Commit", z.concurrentClients, n(z.concurrentPairs)), "concurrent", "reference", "concurrent"},
		{"stat", fmt.Sprintf("stat: random among %s", n(z.statKeys)), "stat", "reference", "stat"},
		{"mounts", fmt.Sprintf("mounts: active on %s-deep chain", n(z.mountsDepth)), "mounts", "reference", "mounts"},
		{"walk", fmt.Sprintf("walk: full List of %s", n(z.walkCount)), "walk-full", "reference", "walk-full"},
		{"walk", fmt.Sprintf("walk: List filtered by label (%s of %s)", n((z.walkCount+walkMatchEvery-1)/walkMatchEvery), n(z.walkCount)), "walk-filtered", "reference", "walk-filtered"},
		{"update", fmt.Sprintf("update: label Update, among %s", n(z.updateKeys)), "update", "reference", "update"},
		{"remove", fmt.Sprintf("remove: Remove of %s leaves", n(z.removeLeaves)), "remove-leaves", "reference", "remove-leaves"},
		{"remove", "remove: Cleanup after those", "remove-leaves-cleanup", "reference", "remove-leaves-cleanup"},
		{"remove", "remove: those Removes + that Cleanup, in all", "remove-leaves-gc", "reference", "remove-leaves-gc"},
		{"remove", fmt.Sprintf("remove %s files: Remove call", n(z.removeFiles)), "remove-big-call", "reference", "remove-big-call"},
		{"remove", fmt.Sprintf("remove %s files: Cleanup call after it", n(z.removeFiles)), "remove-big-cleanup", "reference", "remove-big-cleanup"},
		{"remove", fmt.Sprintf("remove %s files: Remove start → inodes free", n(z.removeFiles)), "remove-big-free", "reference", "remove-big-free"},
		{"usage", fmt.Sprintf("usage: active, %s files", n(z.usageFiles)), "usage", "reference", "usage"},
		{"usage", fmt.Sprintf("usage vs `du -s`, calls alternating (reference columns: `du -s` of our tree)"), "usage-vs-du", "ours", "du"},
	}
	ran := map[string]bool{}
	for _, sc := range selected {
		ran[sc.name] = true
	}

	fmt.Fprintf(w, "Median of %d repetitions (memory: one run). ops/s is throughput (for one-call rows, 1/latency); "+
		"**ratio = %s ops/s ÷ reference ops/s: > 1 means %s is faster.**\n\n", *reps, ours.label, ours.label)
	fmt.Fprintf(w, "| scenario | ops | %s ops/s | p50 | p99 | %s ops/s | p50 | p99 | ratio (>1 = %s faster) |\n",
		ours.label, ref.label, ours.label)
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	failedShown := map[string]bool{}
	for _, r := range rows {
		if !ran[r.scenario] {
			continue
		}
		if err, bad := res.errors[r.scenario]; bad {
			if !failedShown[r.scenario] {
				fmt.Fprintf(w, "| %s | FAILED: %s | | | | | | | |\n", r.scenario, oneLine(err))
				failedShown[r.scenario] = true
			}
			continue
		}
		o, ok1 := res.summary(r.scenario, "ours", r.oursRow)
		f, ok2 := res.summary(r.scenario, r.refServer, r.refRow)
		if !ok1 || !ok2 {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | **%.2f** |\n",
			r.label, n(o.ops), rate(o.opsPerSec), dur(o.p50), dur(o.p99),
			rate(f.opsPerSec), dur(f.p50), dur(f.p99), o.opsPerSec/f.opsPerSec)
	}

	writeFloorTable(w, ours, rows, res, ran)

	// Where the time goes, for the rows whose timed calls were metered.
	var cpuLines []string
	for _, r := range rows {
		if _, bad := res.errors[r.scenario]; !ran[r.scenario] || bad {
			continue
		}
		o, ok1 := res.summary(r.scenario, "ours", r.oursRow)
		f, ok2 := res.summary(r.scenario, r.refServer, r.refRow)
		if !ok1 || !ok2 || !o.cpu || !f.cpu {
			continue
		}
		ratio := "–"
		if o.serverCPUPerOp > 0 {
			ratio = fmt.Sprintf("**%.2f**", float64(f.serverCPUPerOp)/float64(o.serverCPUPerOp))
		}
		cpuLines = append(cpuLines, fmt.Sprintf("| %s | %s | %s | %s | %s | %s |",
			r.label, dur(o.serverCPUPerOp), dur(o.clientCPUPerOp), dur(f.serverCPUPerOp), dur(f.clientCPUPerOp), ratio))
	}
	if len(cpuLines) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "CPU per operation, median of the repetitions: daemon CPU is the server process's user+system CPU time "+
			"(all its threads) during the row's timed calls, client CPU is the benchmark client's own over the same calls, "+
			"both divided by the row's operation count; the client's share bounds how far any server can go. "+
			"**ratio = reference daemon CPU ÷ %s daemon CPU: > 1 means %s uses less.**\n\n", ours.label, ours.label)
		fmt.Fprintf(w, "| scenario | %s: daemon CPU/op | %s: client CPU/op | %s: daemon CPU/op | %s: client CPU/op | daemon CPU ratio (>1 = %s uses less) |\n",
			ours.label, ours.label, ref.label, ref.label, ours.label)
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|")
		for _, l := range cpuLines {
			fmt.Fprintln(w, l)
		}
	}

	if ran["memory"] {
		fmt.Fprintln(w)
		if err, bad := res.errors["memory"]; bad {
			fmt.Fprintf(w, "memory: FAILED: %s\n", oneLine(err))
		} else {
			where := "on the same filesystem as the other scenarios"
			if *memoryWorkDir != "" {
				where = "on a filesystem of their own (see the header)"
			}
			fmt.Fprintf(w, "Resident memory (VmRSS) of each daemon holding N parentless active snapshots, "+
				"created with %d concurrent Prepares per server, both servers at once, roots %s; again after one full List. "+
				"**ratio = reference RSS ÷ %s RSS: > 1 means %s uses less.** "+
				"Time to create is cumulative, both servers creating at once.\n\n", z.createConcurrency, where, ours.label, ours.label)
			fmt.Fprintf(w, "| snapshots | %s RSS | reference RSS | ratio (>1 = %s smaller) | %s RSS after List | reference RSS after List | ratio after List | time to create: %s | reference |\n",
				ours.label, ours.label, ours.label, ours.label)
			fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
			if o, ok := res.summary("memory", "ours", "rss@0"); ok {
				f, _ := res.summary("memory", "reference", "rss@0")
				fmt.Fprintf(w, "| 0 (started) | %s | %s | %.2f | | | | | |\n", mib(o.value), mib(f.value), f.value/o.value)
			}
			for _, c := range z.memoryCounts {
				o, ok1 := res.summary("memory", "ours", fmt.Sprintf("rss@%d", c))
				f, ok2 := res.summary("memory", "reference", fmt.Sprintf("rss@%d", c))
				if !ok1 || !ok2 {
					continue
				}
				ol, _ := res.summary("memory", "ours", fmt.Sprintf("rss-list@%d", c))
				fl, _ := res.summary("memory", "reference", fmt.Sprintf("rss-list@%d", c))
				oc, _ := res.summary("memory", "ours", fmt.Sprintf("create@%d", c))
				fc, _ := res.summary("memory", "reference", fmt.Sprintf("create@%d", c))
				fmt.Fprintf(w, "| %s | %s | %s | **%.2f** | %s | %s | **%.2f** | %s (%s/s) | %s (%s/s) |\n",
					n(c), mib(o.value), mib(f.value), f.value/o.value, mib(ol.value), mib(fl.value), fl.value/ol.value,
					dur(oc.wall), rate(oc.opsPerSec), dur(fc.wall), rate(fc.opsPerSec))
			}
			fmt.Fprintf(w, "\nOf that, anonymous memory (RssAnon: heap, stacks and written private mappings, which the kernel cannot reclaim without swap; "+
				"the rest are file pages, which it can: code, and for the reference also bbolt's memory-mapped database). "+
				"**ratio = reference ÷ %s: > 1 means %s uses less.**\n\n", ours.label, ours.label)
			fmt.Fprintf(w, "| snapshots | %s RssAnon | reference RssAnon | ratio | %s RssAnon after List | reference RssAnon after List | ratio after List |\n",
				ours.label, ours.label)
			fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|--:|")
			for _, c := range append([]int{0}, z.memoryCounts...) {
				o, ok1 := res.summary("memory", "ours", fmt.Sprintf("rss-anon@%d", c))
				f, ok2 := res.summary("memory", "reference", fmt.Sprintf("rss-anon@%d", c))
				if !ok1 || !ok2 {
					continue
				}
				if c == 0 {
					fmt.Fprintf(w, "| 0 (started) | %s | %s | %.2f | | | |\n", mib(o.value), mib(f.value), f.value/o.value)
					continue
				}
				ol, _ := res.summary("memory", "ours", fmt.Sprintf("rss-list-anon@%d", c))
				fl, _ := res.summary("memory", "reference", fmt.Sprintf("rss-list-anon@%d", c))
				fmt.Fprintf(w, "| %s | %s | %s | **%.2f** | %s | %s | **%.2f** |\n",
					n(c), mib(o.value), mib(f.value), f.value/o.value, mib(ol.value), mib(fl.value), fl.value/ol.value)
			}
		}
	}
	if len(warnings) > 0 {
		fmt.Fprintln(w)
		for _, msg := range warnings {
			fmt.Fprintf(w, "- warning: %s\n", msg)
		}
	}
}

// writeFloorTable writes, for each row the floor server ran, its figures
// and how they bound the ratio any server could reach.
func writeFloorTable(w io.Writer, ours server, rows []reportRow, res *results, ran map[string]bool) {
	var lines []string
	for _, r := range rows {
		if _, bad := res.errors[r.scenario]; !ran[r.scenario] || bad || r.refServer != "reference" {
			continue
		}
		fl, ok1 := res.summary(r.scenario, "floor", r.oursRow)
		o, ok2 := res.summary(r.scenario, "ours", r.oursRow)
		f, ok3 := res.summary(r.scenario, "reference", r.refRow)
		if !ok1 || !ok2 || !ok3 {
			continue
		}
		floorCPU, oursCPU := "–", "–"
		if fl.cpu && o.cpu {
			floorCPU, oursCPU = dur(fl.serverCPUPerOp), dur(o.serverCPUPerOp)
		}
		lines = append(lines, fmt.Sprintf("| %s | %s | %s | %s | **%.2f** | %.2f | %.0f%% | %s | %s |",
			r.label, rate(fl.opsPerSec), dur(fl.p50), dur(fl.p99),
			fl.opsPerSec/f.opsPerSec, o.opsPerSec/f.opsPerSec, 100*o.opsPerSec/fl.opsPerSec, floorCPU, oursCPU))
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "The floor: the same client, in the same repetitions, against a server that does only what the contract "+
		"requires (tests/bench/refserver --floor): snapshots in a map, no directories, one synced 4 KiB journal write per change "+
		"before answering (concurrent changes share one), served by containerd's contrib/snapshotservice as the reference is. "+
		"**Where a call is mostly the client, the transport and the flush (Stat, chain, update, remove), its ratio over the "+
		"reference is about the most any server could reach here with this client.** It is a Go server with no index, "+
		"so a C++ server can beat it where server-side gRPC work (Mounts of a deep chain, a full List) or a filtered scan "+
		"dominates. %s ÷ floor is %s's throughput as a share of the floor's; the CPU columns are each daemon's CPU per "+
		"operation, measured as in the CPU table below.\n\n", ours.label, ours.label)
	fmt.Fprintf(w, "| scenario | floor ops/s | p50 | p99 | best possible ratio (floor ÷ reference) | %s ratio | %s ÷ floor | floor: daemon CPU/op | %s: daemon CPU/op |\n",
		ours.label, ours.label, ours.label)
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

func oneLine(err error) string {
	s := strings.SplitN(err.Error(), "\n", 2)[0]
	return strings.ReplaceAll(s, "|", "\\|")
}

func rate(v float64) string {
	switch {
	case v >= 100:
		return groupThousands(int(v + 0.5))
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	}
}

func mib(bytes float64) string { return fmt.Sprintf("%.1f MiB", bytes/(1<<20)) }

func groupThousands(v int) string {
	s := strconv.Itoa(v)
	if v < 0 {
		return "-" + groupThousands(-v)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
