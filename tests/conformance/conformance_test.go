// Package conformance runs containerd's snapshotter test suite
// (snapshots/testsuite.SnapshotterSuite) against a snapshotter daemon
// binary through containerd's proxy client, exactly as containerd talks to a
// proxy_plugins snapshotter.
//
// Every case of the suite gets a fresh daemon process on the fresh root the
// suite hands out, with its socket in a fresh temporary directory. The case
// fails if the daemon does not come up, dies during the case, or does not
// exit with status 0 after SIGTERM. Each daemon's stdout and stderr go to a
// per-case log file, which is printed when the case fails.
//
// The same harness runs against cpp-overlay and against the reference server
// (tests/bench/refserver), so the two can be compared case by case. It needs
// root, because the suite mounts what the snapshotter returns.
//
// Configuration comes from test flags, each defaulting to an environment
// variable:
//
//	-daemon     CONFORMANCE_DAEMON     daemon binary (required); it is run as
//	                                   <daemon> --address <socket> --root <dir>
//	-name       CONFORMANCE_NAME       suite name shown in test names
//	-log-dir    CONFORMANCE_LOG_DIR    where per-case daemon logs go
//	-log-level  CONFORMANCE_LOG_LEVEL  passed as --log-level if set
package conformance

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/containerd/containerd/snapshots/testsuite"
)

var (
	daemonPath = flagString("daemon", "CONFORMANCE_DAEMON", "",
		"snapshotter daemon binary, started as <daemon> --address <socket> --root <dir>")
	suiteName = flagString("name", "CONFORMANCE_NAME", "CppOverlay",
		"suite name used in test names and temporary directories")
	logDir = flagString("log-dir", "CONFORMANCE_LOG_DIR", "",
		"directory for per-case daemon logs (default: a new temporary directory)")
	daemonLogLevel = flagString("log-level", "CONFORMANCE_LOG_LEVEL", "",
		"if set, passed to the daemon as --log-level")
	snapshotterName = flagString("snapshotter", "CONFORMANCE_SNAPSHOTTER", "cpp-overlay",
		"value of the requests' snapshotter field, as containerd sets it from proxy_plugins")

	startTimeout = flag.Duration("start-timeout", 15*time.Second,
		"how long a daemon may take to accept connections on its socket")
	stopTimeout = flag.Duration("stop-timeout", 10*time.Second,
		"how long a daemon may take to exit after SIGTERM before it is killed")
	rpcTimeout = flag.Duration("rpc-timeout", 30*time.Second,
		"deadline of every RPC the proxy client sends")
	caseTimeout = flag.Duration("case-timeout", 120*time.Second,
		"a case's daemon is killed after this long, failing the case")
)

func TestConformance(t *testing.T) {
	if *daemonPath == "" {
		t.Fatal("no daemon binary: pass -daemon=<binary> or set CONFORMANCE_DAEMON")
	}
	if st, err := os.Stat(*daemonPath); err != nil {
		t.Fatalf("daemon binary: %v", err)
	} else if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		t.Fatalf("daemon binary %q is not an executable file", *daemonPath)
	}
	if os.Geteuid() != 0 {
		t.Fatal("the snapshotter suite mounts snapshots and must run as root")
	}

	logs, err := newLogFiles(*logDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("daemon %s, per-case logs in %s", *daemonPath, logs.dir)

	t.Run(*suiteName, func(t *testing.T) {
		testsuite.SnapshotterSuite(t, *suiteName, newDaemonSnapshotter(logs))
		t.Run("RenameAcrossLayers", func(t *testing.T) { renameAcrossLayers(t, logs) })
	})
}
