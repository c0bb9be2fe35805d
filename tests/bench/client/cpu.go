package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ,
// 100 on every Linux architecture.
const clockTick = 10 * time.Millisecond

// cpuMeter measures the CPU time the daemon and the client use over a
// timed interval: start it just before the timed calls, hand the row's
// sample to done just after. Reading /proc stays outside the client's
// interval, so the client's figure is the cost of the calls alone.
type cpuMeter struct {
	d                 *daemon
	tasks, stat, self time.Duration
	err               error
}

func (d *daemon) startCPU() *cpuMeter {
	m := &cpuMeter{d: d}
	m.tasks, m.stat, m.err = d.cpuTime()
	if m.err == nil {
		m.self, m.err = selfCPU()
	}
	return m
}

// done records the CPU time used since the meter started on s (nothing if
// it could not be read, with a warning) and returns s.
func (m *cpuMeter) done(s *sample) *sample {
	self, err := selfCPU()
	var tasks, stat time.Duration
	if err == nil {
		tasks, stat, err = m.d.cpuTime()
	}
	if err == nil {
		err = m.err
	}
	if err != nil {
		warnf("%s: no CPU figures for a row: %v", m.d.label, err)
		return s
	}
	// The sum over threads has nanosecond resolution but loses the CPU time
	// of threads that exited meanwhile; stat counts those, in ticks.
	server := tasks - m.tasks
	if statDelta := stat - m.stat; server < statDelta-2*clockTick {
		server = statDelta
	}
	s.cpu = true
	s.serverCPU = server
	s.clientCPU = self - m.self
	if server == 0 && s.ops > 0 {
		warnf("%s: no daemon CPU time over %d calls: is pid %d a wrapper that did not exec the daemon?",
			m.d.label, s.ops, m.d.cmd.Process.Pid)
	}
	return s
}

// cpuTime is the daemon's CPU time: the sum of sum_exec_runtime over its
// live threads (/proc/PID/task/*/schedstat), and utime+stime of the whole
// process, exited threads included (/proc/PID/stat). A daemon started
// through a wrapper counts only if the wrapper execs it.
func (d *daemon) cpuTime() (tasks, stat time.Duration, err error) {
	pid := d.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name may hold spaces and parentheses: fields count from
	// the last ')', which ends field 2; utime and stime are fields 14, 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	for _, f := range fields[11:13] {
		ticks, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		stat += time.Duration(ticks) * clockTick
	}
	taskDirs, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, p := range taskDirs {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue // the thread exited since the listing
		}
		if err != nil {
			return 0, 0, err
		}
		f := bytes.Fields(b)
		if len(f) == 0 {
			return 0, 0, fmt.Errorf("%s: empty", p)
		}
		ns, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", p, err)
		}
		tasks += time.Duration(ns)
	}
	if len(taskDirs) == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/task: no threads", pid)
	}
	return tasks, stat, nil
}

// selfCPU is the client's own user+system CPU time, all threads.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
