package conformance

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// daemon is one snapshotter daemon process serving one test case.
type daemon struct {
	cmd     *exec.Cmd
	socket  string
	sockDir string
	logPath string
	logFile *os.File

	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // the result of cmd.Wait; read after exited closes

	mu       sync.Mutex
	stopping bool // SIGTERM sent by us; an exit after that is expected
	timedOut bool // killed by the case watchdog
	watchdog *time.Timer
}

// startDaemon starts the daemon on root with its socket in a fresh
// temporary directory, logging to logPath, and waits until the socket
// accepts connections. On failure the process is killed and the error
// carries the daemon's output.
func startDaemon(root, logPath string) (*daemon, error) {
	sockDir, err := os.MkdirTemp("", "conformance-sock-")
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		os.RemoveAll(sockDir)
		return nil, err
	}
	d := &daemon{
		socket:  filepath.Join(sockDir, "snapshotter.sock"),
		sockDir: sockDir,
		logPath: logPath,
		logFile: logFile,
		exited:  make(chan struct{}),
	}
	args := []string{"--address", d.socket, "--root", root}
	if *daemonLogLevel != "" {
		args = append(args, "--log-level", *daemonLogLevel)
	}
	d.cmd = exec.Command(*daemonPath, args...)
	d.cmd.Stdout = logFile
	d.cmd.Stderr = logFile
	// The daemon must not outlive the harness, e.g. when -test.timeout panics.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(logFile, "# %s %s\n", *daemonPath, strings.Join(args, " "))

	if err := d.cmd.Start(); err != nil {
		logFile.Close()
		os.RemoveAll(sockDir)
		return nil, fmt.Errorf("start daemon: %w", err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()

	if err := d.waitReady(*startTimeout); err != nil {
		d.kill()
		d.release()
		return nil, fmt.Errorf("%w\n%s", err, d.output())
	}
	return d, nil
}

// waitReady polls the socket until a connection succeeds, the process
// exits, or the timeout passes.
func (d *daemon) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-d.exited:
			return fmt.Errorf("daemon exited before serving on %s: %s", d.socket, describeExit(d.waitErr))
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
		time.Sleep(20 * time.Millisecond)
	}
}

// startWatchdog kills the daemon if the case is still running after
// timeout, so that a hung daemon fails the case instead of hanging the run.
func (d *daemon) startWatchdog(timeout time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.watchdog = time.AfterFunc(timeout, func() {
		d.mu.Lock()
		d.timedOut = true
		d.mu.Unlock()
		d.kill()
	})
}

// stop sends SIGTERM and waits for a clean exit. It returns an error if the
// daemon had already exited, was killed by the watchdog, did not exit in
// time (it is then killed), or exited non-zero or by a signal.
func (d *daemon) stop(timeout time.Duration) error {
	defer d.release()
	d.mu.Lock()
	if d.watchdog != nil {
		d.watchdog.Stop()
	}
	timedOut := d.timedOut
	d.stopping = true
	d.mu.Unlock()

	if timedOut {
		<-d.exited
		return fmt.Errorf("case ran longer than %v; daemon killed (log %s)", *caseTimeout, d.logPath)
	}
	select {
	case <-d.exited:
		return fmt.Errorf("daemon died during the case: %s (log %s)", describeExit(d.waitErr), d.logPath)
	default:
	}

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("send SIGTERM: %w", err)
	}
	select {
	case <-d.exited:
	case <-time.After(timeout):
		d.kill()
		return fmt.Errorf("daemon did not exit within %v of SIGTERM; killed (log %s)", timeout, d.logPath)
	}
	if d.waitErr != nil {
		return fmt.Errorf("daemon did not exit cleanly after SIGTERM: %s (log %s)", describeExit(d.waitErr), d.logPath)
	}
	return nil
}

// kill sends SIGKILL and waits for the process to be reaped.
func (d *daemon) kill() {
	select {
	case <-d.exited:
		return
	default:
	}
	d.cmd.Process.Kill()
	<-d.exited
}

func (d *daemon) release() {
	d.logFile.Close()
	os.RemoveAll(d.sockDir)
}

// maxLogOutput bounds how much of a daemon log goes into test output.
const maxLogOutput = 64 << 10

// output is the daemon's log so far (its tail if long), for test output.
func (d *daemon) output() string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read daemon log: %v)", err)
	}
	head := fmt.Sprintf("--- daemon log %s ---\n", d.logPath)
	if len(b) > maxLogOutput {
		head = fmt.Sprintf("--- daemon log %s, last %d of %d bytes ---\n", d.logPath, maxLogOutput, len(b))
		b = b[len(b)-maxLogOutput:]
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	return head + string(b) + "--- end of daemon log ---"
}

// describeExit says how a process ended, from the error of cmd.Wait.
func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			s := fmt.Sprintf("killed by signal %v", ws.Signal())
			if ws.CoreDump() {
				s += " (core dumped)"
			}
			return s
		}
		return fmt.Sprintf("exit status %d", exitErr.ExitCode())
	}
	return err.Error()
}
