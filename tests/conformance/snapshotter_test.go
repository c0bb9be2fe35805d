package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/defaults"
	"github.com/containerd/containerd/log"
	"github.com/containerd/containerd/pkg/dialer"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/proxy"
	"github.com/containerd/containerd/snapshots/testsuite"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// newDaemonSnapshotter returns the suite's factory: it starts a daemon on
// root and returns containerd's proxy snapshotter connected to it. The
// returned cleanup closes the client and stops the daemon, failing if the
// daemon did not exit cleanly.
func newDaemonSnapshotter(logs *logFiles) testsuite.SnapshotterFunc {
	return func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
		t := testFromContext(ctx)
		caseName := "case"
		if t != nil {
			caseName = t.Name()
		}
		d, err := startDaemon(root, logs.next(caseName))
		if err != nil {
			return nil, nil, err
		}
		d.startWatchdog(*caseTimeout)
		if t != nil {
			// Runs after the suite's deferred cleanup, so the log is complete.
			t.Cleanup(func() {
				if t.Failed() {
					t.Log(d.output())
				}
			})
		}

		conn, err := dial(d.socket)
		if err != nil {
			d.kill()
			d.release()
			return nil, nil, err
		}
		sn := proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), *snapshotterName)

		cleanup := func() error {
			// The proxy's Close is a no-op; the connection is ours to close.
			closeErr := conn.Close()
			stopErr := d.stop(*stopTimeout)
			if stopErr != nil && t == nil {
				stopErr = fmt.Errorf("%w\n%s", stopErr, d.output())
			}
			// The suite mounts under its work directory and unmounts before
			// this cleanup, so anything mounted under the root is the
			// daemon's.
			mountErr := unmountLeftovers(root)
			for _, err := range []error{stopErr, mountErr, closeErr} {
				if err != nil {
					return err
				}
			}
			return nil
		}
		return sn, cleanup, nil
	}
}

// dial connects to a daemon the way containerd 1.6 connects to a proxy
// plugin (services/server getClient): insecure, containerd's unix dialer,
// backoff capped at 3 s, 16 MiB messages. Each RPC also gets a deadline so a
// hung daemon fails the call instead of hanging the case.
func dial(socket string) (*grpc.ClientConn, error) {
	backoffConfig := backoff.DefaultConfig
	backoffConfig.MaxDelay = 3 * time.Second
	conn, err := grpc.Dial(dialer.DialAddress(socket),
		grpc.WithInsecure(),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoffConfig}),
		grpc.WithContextDialer(dialer.ContextDialer),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(defaults.DefaultMaxRecvMsgSize),
			grpc.MaxCallSendMsgSize(defaults.DefaultMaxSendMsgSize)),
		grpc.WithUnaryInterceptor(unaryDeadline),
		grpc.WithStreamInterceptor(streamDeadline),
	)
	if err != nil {
		return nil, fmt.Errorf("dial %q: %w", socket, err)
	}
	return conn, nil
}

func unaryDeadline(ctx context.Context, method string, req, reply interface{}, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx, cancel := context.WithTimeout(ctx, *rpcTimeout)
	defer cancel()
	return invoker(ctx, method, req, reply, cc, opts...)
}

func streamDeadline(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	ctx, cancel := context.WithTimeout(ctx, *rpcTimeout)
	stream, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		cancel()
		return nil, err
	}
	return &cancelOnEnd{ClientStream: stream, cancel: cancel}, nil
}

// cancelOnEnd releases a stream's deadline once the stream has ended.
type cancelOnEnd struct {
	grpc.ClientStream
	cancel context.CancelFunc
}

func (s *cancelOnEnd) RecvMsg(m interface{}) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.cancel()
	}
	return err
}

// testFromContext finds the case's *testing.T. The suite does not pass it
// to the factory, but the context it passes carries a logger from
// containerd's log/logtest whose hook holds the test (unexported field t).
// The harness needs it only to print the daemon log of failed cases, so it
// returns nil rather than failing if the hook ever looks different; the
// daemon log then goes into the cleanup error instead.
func testFromContext(ctx context.Context) *testing.T {
	entry := log.G(ctx)
	if entry == nil || entry.Logger == nil {
		return nil
	}
	for _, hooks := range entry.Logger.Hooks {
		for _, hook := range hooks {
			v := reflect.ValueOf(hook)
			if v.Kind() != reflect.Ptr || v.Elem().Kind() != reflect.Struct {
				continue
			}
			f := v.Elem().FieldByName("t")
			if !f.IsValid() || !f.CanAddr() {
				continue
			}
			f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
			if t, ok := f.Interface().(*testing.T); ok {
				return t
			}
		}
	}
	return nil
}

// logFiles hands out one log file path per daemon in one directory.
type logFiles struct {
	dir  string
	mu   sync.Mutex
	seen map[string]int
}

func newLogFiles(dir string) (*logFiles, error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "conformance-logs-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &logFiles{dir: dir, seen: map[string]int{}}, nil
}

// next returns <dir>/<case>.log, or <dir>/<case>.<n>.log for the n-th
// daemon of the same case (with -test.count).
func (l *logFiles) next(caseName string) string {
	base := strings.NewReplacer("/", "_", " ", "_").Replace(caseName)
	l.mu.Lock()
	l.seen[base]++
	n := l.seen[base]
	l.mu.Unlock()
	if n > 1 {
		base = fmt.Sprintf("%s.%d", base, n)
	}
	return filepath.Join(l.dir, base+".log")
}

// unmountLeftovers detaches every mount at or below dir and reports them
// as an error.
func unmountLeftovers(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var left []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			left = append(left, mp)
		}
	}
	if len(left) == 0 {
		return nil
	}
	// Deepest first, so nested mounts come off before their parents.
	sort.Sort(sort.Reverse(sort.StringSlice(left)))
	for _, mp := range left {
		unix.Unmount(mp, unix.MNT_DETACH)
	}
	return fmt.Errorf("daemon left %d mount(s) under its root after exiting: %s", len(left), strings.Join(left, ", "))
}

// unescapeMountinfo undoes the octal escapes (\040 for a space, ...) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
