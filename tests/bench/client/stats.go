package main

import (
	"math"
	"sort"
	"sync"
	"time"
)

// sample is what one repetition measured for one row of the report.
type sample struct {
	ops   int             // operations timed
	wall  time.Duration   // wall time of all of them (for ops/s)
	lats  []time.Duration // latency of each operation
	value float64         // a non-time figure (bytes of memory), if any

	// CPU time used over the timed interval by the daemon and by the
	// client, if measured (cpu).
	cpu                  bool
	serverCPU, clientCPU time.Duration
}

// recorder collects latencies from concurrent callers.
type recorder struct {
	mu   sync.Mutex
	lats []time.Duration
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	r.lats = append(r.lats, d)
	r.mu.Unlock()
}

func (r *recorder) sample(wall time.Duration) *sample {
	return &sample{ops: len(r.lats), wall: wall, lats: r.lats}
}

// single is a row with one timed operation.
func single(d time.Duration) *sample {
	return &sample{ops: 1, wall: d, lats: []time.Duration{d}}
}

func (s *sample) opsPerSec() float64 {
	if s.wall <= 0 {
		return math.Inf(1)
	}
	return float64(s.ops) / s.wall.Seconds()
}

// percentile is the nearest-rank percentile p (0 < p <= 100) of s's
// latencies.
func (s *sample) percentile(p float64) time.Duration {
	if len(s.lats) == 0 {
		return 0
	}
	sorted := append([]time.Duration(nil), s.lats...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// summary is a row's figures for one server: the median over repetitions
// of each figure separately.
type summary struct {
	reps      int
	ops       int
	opsPerSec float64
	p50, p99  time.Duration
	value     float64
	wall      time.Duration
	// CPU time per operation, if every repetition measured it (cpu).
	cpu                            bool
	serverCPUPerOp, clientCPUPerOp time.Duration
}

func summarize(samples []*sample) (summary, bool) {
	if len(samples) == 0 {
		return summary{}, false
	}
	var ops, rates, p50s, p99s, values, walls, serverCPUs, clientCPUs []float64
	cpu := true
	for _, s := range samples {
		if s.cpu && s.ops > 0 {
			serverCPUs = append(serverCPUs, float64(s.serverCPU)/float64(s.ops))
			clientCPUs = append(clientCPUs, float64(s.clientCPU)/float64(s.ops))
		} else {
			cpu = false
		}
		ops = append(ops, float64(s.ops))
		rates = append(rates, s.opsPerSec())
		p50s = append(p50s, float64(s.percentile(50)))
		p99s = append(p99s, float64(s.percentile(99)))
		values = append(values, s.value)
		walls = append(walls, float64(s.wall))
	}
	sum := summary{
		reps:      len(samples),
		ops:       int(median(ops)),
		opsPerSec: median(rates),
		p50:       time.Duration(median(p50s)),
		p99:       time.Duration(median(p99s)),
		value:     median(values),
		wall:      time.Duration(median(walls)),
	}
	if cpu {
		sum.cpu = true
		sum.serverCPUPerOp = time.Duration(median(serverCPUs))
		sum.clientCPUPerOp = time.Duration(median(clientCPUs))
	}
	return sum, true
}

// median of an odd count is the middle value, of an even count the mean of
// the two middle ones.
func median(xs []float64) float64 {
	sorted := append([]float64(nil), xs...)
	sort.Float64s(sorted)
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
