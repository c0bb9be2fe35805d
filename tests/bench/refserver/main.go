// Command refserver serves containerd's own overlayfs snapshotter over the
// containerd snapshots gRPC API on a unix socket. It is the reference peer
// that the conformance harness and the benchmarks compare cpp-overlay with.
//
// The snapshotter is configured as containerd 1.6's overlayfs plugin
// configures it (snapshots/overlay/plugin): asynchronous remove, no upperdir
// label. The gRPC server uses containerd's 16 MiB message limits. The socket
// exists only while the server accepts connections; SIGTERM or SIGINT stop
// the server gracefully and exit 0.
//
// With --floor it serves the benchmark's floor instead (floor.go): a
// snapshotter that keeps everything in memory and only syncs one journal
// block per change, served by this same code.
//
// Usage: refserver [--floor] --address <socket> --root <dir> [--log-level <level>]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/contrib/snapshotservice"
	"github.com/containerd/containerd/defaults"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/overlay"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
)

// gracefulStopTimeout bounds how long in-flight RPCs may delay shutdown.
const gracefulStopTimeout = 10 * time.Second

func main() {
	address := flag.String("address", "", "unix socket path to serve on (required)")
	root := flag.String("root", "", "snapshotter root directory (required)")
	logLevel := flag.String("log-level", "info", "log level: trace, debug, info, warn, error")
	floor := flag.Bool("floor", false, "serve the benchmark's floor (in memory, one synced journal block per change) "+
		"instead of containerd's overlayfs snapshotter")
	flag.Parse()

	if err := run(*address, *root, *logLevel, *floor); err != nil {
		logrus.WithError(err).Error("refserver failed")
		os.Exit(1)
	}
}

func run(address, root, logLevel string, floor bool) error {
	if address == "" || root == "" {
		return errors.New("--address and --root are required")
	}
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments: %q", flag.Args())
	}
	level, err := logrus.ParseLevel(logLevel)
	if err != nil {
		return err
	}
	logrus.SetLevel(level)
	logrus.SetOutput(os.Stderr)

	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	var sn snapshots.Snapshotter
	if floor {
		sn, err = newFloorSnapshotter(root)
	} else {
		sn, err = overlay.NewSnapshotter(root, overlay.AsynchronousRemove)
	}
	if err != nil {
		return fmt.Errorf("create snapshotter at %q: %w", root, err)
	}
	defer sn.Close()

	server := grpc.NewServer(
		grpc.MaxRecvMsgSize(defaults.DefaultMaxRecvMsgSize),
		grpc.MaxSendMsgSize(defaults.DefaultMaxSendMsgSize),
		grpc.UnaryInterceptor(logUnary),
		grpc.StreamInterceptor(logStream),
	)
	snapshotsapi.RegisterSnapshotsServer(server, snapshotservice.FromSnapshotter(sn))

	listener, err := listen(address)
	if err != nil {
		return err
	}
	defer os.Remove(address)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	serveErr := make(chan error, 1)
	go func() { serveErr <- server.Serve(listener) }()
	logrus.WithFields(logrus.Fields{"address": address, "root": root}).Info("refserver serving")

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case sig := <-signals:
		logrus.WithField("signal", sig).Info("refserver stopping")
	}

	stopped := make(chan struct{})
	go func() {
		server.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(gracefulStopTimeout):
		logrus.Warn("graceful stop timed out; closing connections")
		server.Stop()
		<-stopped
	}
	logrus.Info("refserver stopped")
	return nil
}

// listen removes a stale socket at address (but nothing else) and listens
// on a fresh one, creating the parent directory if needed.
func listen(address string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(address), 0o700); err != nil {
		return nil, err
	}
	if st, err := os.Lstat(address); err == nil {
		if st.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%q exists and is not a socket", address)
		}
		if err := os.Remove(address); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", address)
	if err != nil {
		return nil, fmt.Errorf("listen on %q: %w", address, err)
	}
	if err := os.Chmod(address, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// logUnary and logStream log one line per failed RPC, and every RPC at
// debug level, so a failing conformance case can be compared call by call.
func logUnary(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
	resp, err := handler(ctx, req)
	logRPC(info.FullMethod, req, err)
	return resp, err
}

func logStream(srv interface{}, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	err := handler(srv, ss)
	logRPC(info.FullMethod, nil, err)
	return err
}

func logRPC(method string, req interface{}, err error) {
	entry := logrus.WithField("method", method)
	if req != nil && logrus.IsLevelEnabled(logrus.DebugLevel) {
		entry = entry.WithField("request", fmt.Sprintf("%+v", req))
	}
	if err != nil {
		entry.WithError(err).Warn("rpc failed")
		return
	}
	entry.Debug("rpc")
}
