package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/defaults"
	"github.com/containerd/containerd/pkg/dialer"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/proxy"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// server is one of the two snapshotter daemons being compared.
type server struct {
	id     string // "ours" or "reference": the key of its results
	label  string // shown in the report
	binary string
	args   []string // before --address and --root
	// floor: the floor server, which keeps no files (no snapshot
	// directories to write into or to measure).
	floor bool
}

// daemon is one running server process on its own fresh root, with
// containerd's proxy snapshotter connected to it.
type daemon struct {
	server
	dir    string // holds root, socket and log; removed by release
	root   string
	socket string
	log    *os.File
	cmd    *exec.Cmd
	conn   *grpc.ClientConn
	sn     snapshots.Snapshotter

	exited  chan struct{}
	waitErr error
}

// startDaemon starts s on a fresh root <parent>/<name>/root and connects to
// it once its socket accepts connections.
func startDaemon(s server, parent, name string) (*daemon, error) {
	dir := filepath.Join(parent, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return nil, err
	}
	d := &daemon{
		server: s,
		dir:    dir,
		root:   filepath.Join(dir, "root"),
		socket: filepath.Join(dir, "snapshotter.sock"),
		log:    logFile,
		exited: make(chan struct{}),
	}
	d.cmd = exec.Command(s.binary, append(append([]string(nil), s.args...), "--address", d.socket, "--root", d.root)...)
	d.cmd.Stdout = logFile
	d.cmd.Stderr = logFile
	// The daemon must not outlive the client.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", s.binary, err)
	}
	// run.sh kills daemons by these pids if the client itself is killed.
	pid := strconv.Itoa(d.cmd.Process.Pid)
	if err := os.WriteFile(filepath.Join(dir, "daemon.pid"), []byte(pid+"\n"), 0o600); err != nil {
		d.cmd.Process.Kill()
		d.cmd.Wait()
		logFile.Close()
		return nil, err
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	if err := d.waitReady(30 * time.Second); err != nil {
		d.kill()
		return nil, fmt.Errorf("%s: %w\n%s", s.label, err, d.logTail())
	}
	if err := d.connect(); err != nil {
		d.kill()
		return nil, err
	}
	return d, nil
}

func (d *daemon) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-d.exited:
			return fmt.Errorf("daemon exited before serving: %v", d.waitErr)
		default:
		}
		conn, err := net.DialTimeout("unix", d.socket, 100*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon did not accept connections on %s within %v: %v", d.socket, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// connect dials the way containerd 1.6 dials a proxy plugin
// (services/server getClient): insecure, containerd's unix dialer, backoff
// capped at 3 s, 16 MiB messages; one connection shared by all callers.
func (d *daemon) connect() error {
	backoffConfig := backoff.DefaultConfig
	backoffConfig.MaxDelay = 3 * time.Second
	conn, err := grpc.Dial(dialer.DialAddress(d.socket),
		grpc.WithInsecure(),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoffConfig}),
		grpc.WithContextDialer(dialer.ContextDialer),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(defaults.DefaultMaxRecvMsgSize),
			grpc.MaxCallSendMsgSize(defaults.DefaultMaxSendMsgSize)),
	)
	if err != nil {
		return fmt.Errorf("dial %q: %w", d.socket, err)
	}
	d.conn = conn
	d.sn = proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), "bench")
	return nil
}

// cleanup calls Cleanup, which containerd's proxy snapshotter implements
// as snapshots.Cleaner.
func (d *daemon) cleanup(ctx context.Context) error {
	c, ok := d.sn.(snapshots.Cleaner)
	if !ok {
		return errors.New("proxy snapshotter does not implement Cleanup")
	}
	return c.Cleanup(ctx)
}

// alive fails if the process has exited.
func (d *daemon) alive() error {
	select {
	case <-d.exited:
		return fmt.Errorf("%s died: %v\n%s", d.label, d.waitErr, d.logTail())
	default:
		return nil
	}
}

// resident is a daemon's resident memory in bytes: all of it (VmRSS), and
// its anonymous part (RssAnon: heap, stacks and written private mappings,
// which the kernel cannot reclaim without swap; the rest are file pages,
// which it can: code, and for the reference also bbolt's memory-mapped
// database).
type resident struct {
	rss, anon int64
}

// memory reads the daemon's resident memory from /proc/PID/status.
func (d *daemon) memory() (resident, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return resident{}, err
	}
	defer f.Close()
	var m resident
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[2] != "kB" {
			continue
		}
		var field *int64
		switch fields[0] {
		case "VmRSS:":
			field = &m.rss
		case "RssAnon:":
			field = &m.anon
		default:
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return resident{}, err
		}
		*field = kb << 10
		found++
	}
	if found != 2 {
		return resident{}, errors.New("no VmRSS or RssAnon in /proc/PID/status")
	}
	return m, nil
}

// stop closes the connection, sends SIGTERM (SIGKILL after 30 s) and
// removes the root. It returns an error if the daemon had died or did not
// exit cleanly.
func (d *daemon) stop() error {
	var errs []string
	if d.conn != nil {
		d.conn.Close()
	}
	select {
	case <-d.exited:
		errs = append(errs, fmt.Sprintf("%s had exited: %v", d.label, d.waitErr))
	default:
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
			if d.waitErr != nil {
				errs = append(errs, fmt.Sprintf("%s exited after SIGTERM: %v", d.label, d.waitErr))
			}
		case <-time.After(30 * time.Second):
			d.kill()
			errs = append(errs, fmt.Sprintf("%s did not exit within 30 s of SIGTERM; killed", d.label))
		}
	}
	d.log.Close()
	if len(errs) > 0 {
		errs = append(errs, d.logTail())
	}
	// Nothing here mounts, so the root holds plain directories only.
	if err := os.RemoveAll(d.dir); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

func (d *daemon) kill() {
	select {
	case <-d.exited:
	default:
		d.cmd.Process.Kill()
		<-d.exited
	}
}

// logTail is the end of the daemon's log, for error messages.
func (d *daemon) logTail() string {
	b, err := os.ReadFile(d.log.Name())
	if err != nil {
		return ""
	}
	const max = 4096
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return fmt.Sprintf("--- %s log %s (tail) ---\n%s--- end ---", d.label, d.log.Name(), b)
}
