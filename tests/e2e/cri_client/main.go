// Command cri-client is the small Container Runtime Interface client the
// cpp-overlay end-to-end test uses to drive containerd's CRI plugin the way a
// kubelet would: pod sandbox, container, images. crictl is not packaged in
// Debian, so this speaks the runtime.v1 gRPC API itself, using the message
// subset in runtime_v1_subset.proto.
//
// Usage: cri-client -endpoint <unix socket> <command> [flags]
//
//	version
//	image-status -image REF          prints "<id> <size>"; exit 3 if absent
//	list-images                      prints one "<id> <tag>..." line per image
//	remove-image -image REF
//	imagefs-info                     prints one mountpoint per image filesystem
//	run-pod -name N -uid U -log-dir D                       prints the sandbox id
//	pod-state -id ID                 prints SANDBOX_READY or SANDBOX_NOTREADY
//	create -pod ID -name N -uid U -log-dir D -container C -image REF -log-path P [-- cmd...]
//	                                 prints the container id
//	start -id ID
//	wait -id ID [-timeout 60s]       waits until exited, prints the exit code
//	stop -id ID
//	remove -id ID
//	stop-pod -id ID
//	remove-pod -id ID
//
// The pod uses the host network (NamespaceMode NODE), so no CNI is needed.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"cpp-overlay-e2e/criapi"

	"google.golang.org/grpc"
)

func main() {
	global := flag.NewFlagSet("cri-client", flag.ExitOnError)
	endpoint := global.String("endpoint", "", "containerd socket path (unix)")
	timeout := global.Duration("rpc-timeout", 2*time.Minute, "timeout of each call")
	global.Parse(os.Args[1:])
	if *endpoint == "" || global.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: cri-client -endpoint <socket> <command> [flags]")
		os.Exit(2)
	}
	conn, err := grpc.Dial(*endpoint, grpc.WithInsecure(),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		}))
	if err != nil {
		fatal(err)
	}
	defer conn.Close()
	c := client{
		runtime: criapi.NewRuntimeServiceClient(conn),
		images:  criapi.NewImageServiceClient(conn),
		timeout: *timeout,
	}
	cmd, args := global.Arg(0), global.Args()[1:]
	if err := c.run(cmd, args); err != nil {
		fatal(err)
	}
}

type client struct {
	runtime criapi.RuntimeServiceClient
	images  criapi.ImageServiceClient
	timeout time.Duration
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "cri-client:", err)
	os.Exit(1)
}

func (c *client) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.timeout)
}

// podConfig rebuilds the sandbox config from the pod flags; CreateContainer
// needs the same config again, as a kubelet passes it.
func podConfig(name, uid, logDir string) *criapi.PodSandboxConfig {
	return &criapi.PodSandboxConfig{
		Metadata:     &criapi.PodSandboxMetadata{Name: name, Uid: uid, Namespace: "cpp-overlay-e2e"},
		LogDirectory: logDir,
		Labels:       map[string]string{"app": "cpp-overlay-e2e"},
		Linux: &criapi.LinuxPodSandboxConfig{
			SecurityContext: &criapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &criapi.NamespaceOption{Network: criapi.NamespaceMode_NODE},
			},
		},
	}
}

func (c *client) run(cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	id := fs.String("id", "", "sandbox or container id")
	image := fs.String("image", "", "image reference")
	pod := fs.String("pod", "", "sandbox id")
	name := fs.String("name", "", "pod name")
	uid := fs.String("uid", "", "pod uid")
	logDir := fs.String("log-dir", "", "pod log directory")
	container := fs.String("container", "", "container name")
	logPath := fs.String("log-path", "", "container log path, relative to the pod log directory")
	waitTimeout := fs.Duration("timeout", 60*time.Second, "how long wait waits")
	fs.Parse(args)
	ctx, cancel := c.ctx()
	defer cancel()

	switch cmd {
	case "version":
		r, err := c.runtime.Version(ctx, &criapi.VersionRequest{Version: "v1"})
		if err != nil {
			return err
		}
		fmt.Printf("%s %s %s\n", r.RuntimeName, r.RuntimeVersion, r.RuntimeApiVersion)
	case "image-status":
		r, err := c.images.ImageStatus(ctx, &criapi.ImageStatusRequest{Image: &criapi.ImageSpec{Image: *image}})
		if err != nil {
			return err
		}
		if r.Image == nil {
			fmt.Fprintf(os.Stderr, "image %q is not present\n", *image)
			os.Exit(3)
		}
		fmt.Printf("%s %d\n", r.Image.Id, r.Image.GetSize())
	case "list-images":
		r, err := c.images.ListImages(ctx, &criapi.ListImagesRequest{})
		if err != nil {
			return err
		}
		for _, i := range r.Images {
			fmt.Printf("%s %s\n", i.Id, strings.Join(i.RepoTags, " "))
		}
	case "remove-image":
		_, err := c.images.RemoveImage(ctx, &criapi.RemoveImageRequest{Image: &criapi.ImageSpec{Image: *image}})
		return err
	case "imagefs-info":
		r, err := c.images.ImageFsInfo(ctx, &criapi.ImageFsInfoRequest{})
		if err != nil {
			return err
		}
		for _, f := range r.ImageFilesystems {
			fmt.Println(f.GetFsId().GetMountpoint())
		}
	case "run-pod":
		r, err := c.runtime.RunPodSandbox(ctx, &criapi.RunPodSandboxRequest{Config: podConfig(*name, *uid, *logDir)})
		if err != nil {
			return err
		}
		fmt.Println(r.PodSandboxId)
	case "pod-state":
		r, err := c.runtime.PodSandboxStatus(ctx, &criapi.PodSandboxStatusRequest{PodSandboxId: *id})
		if err != nil {
			return err
		}
		fmt.Println(r.Status.State)
	case "create":
		config := &criapi.ContainerConfig{
			Metadata: &criapi.ContainerMetadata{Name: *container},
			Image:    &criapi.ImageSpec{Image: *image},
			Command:  fs.Args(),
			LogPath:  *logPath,
			Linux: &criapi.LinuxContainerConfig{
				SecurityContext: &criapi.LinuxContainerSecurityContext{
					NamespaceOptions: &criapi.NamespaceOption{
						Network: criapi.NamespaceMode_NODE,
						Pid:     criapi.NamespaceMode_CONTAINER,
					},
				},
			},
		}
		r, err := c.runtime.CreateContainer(ctx, &criapi.CreateContainerRequest{
			PodSandboxId:  *pod,
			Config:        config,
			SandboxConfig: podConfig(*name, *uid, *logDir),
		})
		if err != nil {
			return err
		}
		fmt.Println(r.ContainerId)
	case "start":
		_, err := c.runtime.StartContainer(ctx, &criapi.StartContainerRequest{ContainerId: *id})
		return err
	case "wait":
		deadline := time.Now().Add(*waitTimeout)
		for {
			r, err := c.runtime.ContainerStatus(ctx, &criapi.ContainerStatusRequest{ContainerId: *id})
			if err != nil {
				return err
			}
			if r.Status.State == criapi.ContainerState_CONTAINER_EXITED {
				fmt.Println(r.Status.ExitCode)
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("container %s still %s after %s", *id, r.Status.State, *waitTimeout)
			}
			time.Sleep(200 * time.Millisecond)
		}
	case "stop":
		_, err := c.runtime.StopContainer(ctx, &criapi.StopContainerRequest{ContainerId: *id, Timeout: 1})
		return err
	case "remove":
		_, err := c.runtime.RemoveContainer(ctx, &criapi.RemoveContainerRequest{ContainerId: *id})
		return err
	case "stop-pod":
		_, err := c.runtime.StopPodSandbox(ctx, &criapi.StopPodSandboxRequest{PodSandboxId: *id})
		return err
	case "remove-pod":
		_, err := c.runtime.RemovePodSandbox(ctx, &criapi.RemovePodSandboxRequest{PodSandboxId: *id})
		return err
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	return nil
}
