#!/usr/bin/env python3
"""Checks the deployment files of cpp-overlay agree with each other.

Run by deploy_test.sh. Prints one "PASS: <what>" or "FAIL: <what>" line per
check (details indented below a FAIL). Needs python3-yaml; TOML is read with
the standard library's tomllib (Python 3.11).
"""

import argparse
import re
import tomllib

import yaml

DEFAULT_ADDRESS = "/run/containerd-cpp-overlay-grpc/containerd-cpp-overlay-grpc.sock"
DEFAULT_ROOT = "/var/lib/containerd/io.containerd.snapshotter.v1.cpp-overlay"
CRI = "io.containerd.grpc.v1.cri"

failures = 0


def report(ok, what, detail=""):
    global failures
    print(("PASS: " if ok else "FAIL: ") + what)
    if not ok:
        failures += 1
        for line in str(detail).splitlines()[-20:]:
            print("    | " + line)


def check(what, fn):
    """Runs fn(); it returns True, or a falsy value / raises to fail."""
    try:
        result = fn()
        report(bool(result), what, "" if result else "condition is false")
    except Exception as e:  # any error is a failed check, with its message
        report(False, what, "%s: %s" % (type(e).__name__, e))


def run_group(what, fn, *args):
    """Runs one group of checks; if reading or parsing its input fails, the
    group counts as one failed check instead of ending the run, so no later
    group's checks go missing unnoticed."""
    try:
        return fn(*args)
    except Exception as e:
        report(False, "%s can be read and checked" % what, "%s: %s" % (type(e).__name__, e))
        return None


def snippet_checks(path):
    with open(path, "rb") as f:
        text = f.read()
    config = {}

    def parses():
        config.update(tomllib.loads(text.decode()))
        return True

    check("containerd snippet is valid TOML", parses)
    proxy = config.get("proxy_plugins", {}).get("cpp-overlay", {})
    check("snippet: proxy_plugins.cpp-overlay has type snapshot",
          lambda: proxy.get("type") == "snapshot")
    check("snippet: proxy address is the daemon's default socket",
          lambda: proxy.get("address") == DEFAULT_ADDRESS)
    check("snippet: CRI snapshotter is cpp-overlay",
          lambda: config["plugins"][CRI]["containerd"]["snapshotter"] == "cpp-overlay")
    check("snippet: sets nothing but the proxy plugin and the CRI snapshotter",
          lambda: set(config) == {"proxy_plugins", "plugins"} and set(config["plugins"]) == {CRI}
          and set(config["plugins"][CRI]) == {"containerd"}
          and set(config["plugins"][CRI]["containerd"]) == {"snapshotter"})
    return text.decode()


def generated_config_checks(snippet_text, generated_path, placeholder_socket):
    with open(generated_path, "rb") as f:
        generated_text = f.read().decode()
    config = {}

    def parses():
        config.update(tomllib.loads(generated_text))
        return True

    check("the e2e containerd config (run.sh --print-config) is valid TOML", parses)
    check("the e2e config points cpp-overlay at the test's socket",
          lambda: config["proxy_plugins"]["cpp-overlay"] == {"type": "snapshot", "address": placeholder_socket})
    check("the e2e config keeps the snippet's CRI snapshotter",
          lambda: config["plugins"][CRI]["containerd"]["snapshotter"] == "cpp-overlay")

    def verbatim():
        # Every meaningful snippet line, address aside, appears in order.
        lines = [l for l in snippet_text.splitlines()
                 if l.strip() and not l.lstrip().startswith("#") and DEFAULT_ADDRESS not in l]
        generated = generated_text.splitlines()
        pos = 0
        for line in lines:
            pos = generated.index(line, pos) + 1
        return True

    check("the e2e config holds the snippet verbatim (only the address replaced)", verbatim)


def unit_checks(path):
    with open(path) as f:
        text = f.read()
    # Join continuation lines, then read "key=value" per section.
    text = re.sub(r"\\\n\s*", " ", text)
    sections, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    unit, service, install = sections.get("Unit", {}), sections.get("Service", {}), sections.get("Install", {})
    check("unit: ordered before containerd.service",
          lambda: "containerd.service" in " ".join(unit.get("Before", [])).split())
    check("unit: Type=notify (the daemon sends READY=1), Restart=on-failure",
          lambda: service.get("Type") == ["notify"] and service.get("NotifyAccess") == ["main"]
          and service.get("Restart") == ["on-failure"])
    check("unit: KillMode=process (stopping it signals only the daemon)",
          lambda: service.get("KillMode") == ["process"])
    exec_start = " ".join(service.get("ExecStart", []))
    # The daemon's defaults are the snippet's address and root (checked
    # against --help below); flags here would silently win over config.toml.
    check("unit: ExecStart runs the daemon with no flags, so config.toml governs",
          lambda: exec_start.split() == ["/usr/bin/containerd-cpp-overlay-grpc"])
    check("unit: no option that gives the daemon a private mount namespace",
          lambda: not any(k in service for k in ("PrivateTmp", "ProtectSystem", "ProtectHome",
                                                   "PrivateMounts", "ReadOnlyPaths", "ReadWritePaths",
                                                   "InaccessiblePaths", "TemporaryFileSystem",
                                                   "BindPaths", "MountFlags")))
    check("unit: installed for multi-user.target and containerd.service",
          lambda: set(" ".join(install.get("WantedBy", [])).split()) >= {"multi-user.target", "containerd.service"})


def kubernetes_checks(daemonset_path, runtimeclass_path):
    docs = []
    check("DaemonSet YAML parses", lambda: docs.extend(yaml.safe_load_all(open(daemonset_path))) or True)
    ds = docs[0] if docs else {}
    check("DaemonSet: one apps/v1 DaemonSet document",
          lambda: len(docs) == 1 and ds["apiVersion"] == "apps/v1" and ds["kind"] == "DaemonSet")
    spec = (ds.get("spec") or {}).get("template", {}).get("spec", {})
    containers = spec.get("containers") or [{}]
    container = containers[0]
    check("DaemonSet: selector matches the pod labels",
          lambda: all(ds["spec"]["template"]["metadata"]["labels"].get(k) == v
                      for k, v in ds["spec"]["selector"]["matchLabels"].items()))
    check("DaemonSet: the container is privileged",
          lambda: container["securityContext"]["privileged"] is True)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    for host_path in ("/var/lib/containerd", "/run"):
        check("DaemonSet: host %s mounted at the same path with Bidirectional propagation" % host_path,
              lambda hp=host_path: mounts[hp]["mountPropagation"] == "Bidirectional"
              and volumes[mounts[hp]["name"]]["hostPath"]["path"] == hp)
    args = " ".join(container.get("command", []) + container.get("args", []))
    probe = " ".join(container.get("readinessProbe", {}).get("exec", {}).get("command", []))
    check("DaemonSet: the readiness probe asks the daemon's socket",
          lambda: "--address=%s" % DEFAULT_ADDRESS in probe)
    check("DaemonSet: the daemon serves the snippet's address on the default root",
          lambda: "--address=%s" % DEFAULT_ADDRESS in args and "--root=%s" % DEFAULT_ROOT in args)
    check("DaemonSet: no service account token is mounted (it would propagate into the host's /run)",
          lambda: spec.get("automountServiceAccountToken") is False)
    rc = []
    check("RuntimeClass YAML parses", lambda: rc.extend(yaml.safe_load_all(open(runtimeclass_path))) or True)
    check("RuntimeClass: handler cpp-overlay, on the DaemonSet's nodes",
          lambda: rc[0]["kind"] == "RuntimeClass" and rc[0]["handler"] == "cpp-overlay"
          and rc[0]["scheduling"]["nodeSelector"].items() <= spec["nodeSelector"].items())


def daemon_help_checks(help_path):
    with open(help_path) as f:
        text = f.read()
    check("the daemon's default --address is the snippet's address", lambda: DEFAULT_ADDRESS in text)
    check("the daemon's default --root is the unit's root", lambda: DEFAULT_ROOT in text)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--deploy-dir", required=True)
    parser.add_argument("--generated-config", required=True)
    parser.add_argument("--placeholder-socket", required=True)
    parser.add_argument("--daemon-help")
    args = parser.parse_args()
    d = args.deploy_dir
    snippet = run_group("the containerd config snippet", snippet_checks, d + "/containerd-config.toml")
    if snippet is not None:
        run_group("the e2e config", generated_config_checks,
                  snippet, args.generated_config, args.placeholder_socket)
    run_group("the systemd unit", unit_checks, d + "/containerd-cpp-overlay-grpc.service")
    run_group("the Kubernetes manifests", kubernetes_checks,
              d + "/kubernetes/daemonset.yaml", d + "/kubernetes/runtimeclass.yaml")
    if args.daemon_help:
        run_group("the daemon's --help", daemon_help_checks, args.daemon_help)
    print("deploy_checks.py: done")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
