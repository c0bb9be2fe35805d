#!/usr/bin/env python3
"""Builds the OCI image archives the cpp-overlay end-to-end test imports.

No registry is reachable from the test, so every image is made here from a
static busybox and a few synthetic layers, and written as an OCI image layout
tar that `ctr images import` accepts. All images share one base layer (busybox
and its applet links), so they also share its committed snapshot.

Images (names are full references, kept by `ctr images import` as they are):
  localhost/cpp-overlay-e2e/layers:1  base + 3 layers exercising the OCI layer
      rules: an added file, a file modified twice, a `.wh.` whiteout of a file
      and of a directory, an opaque directory (`.wh..wh..opq`), a hard link, a
      file with its own mode and owner; the check script runs in it.
  localhost/cpp-overlay-e2e/many:1    40 layers: base + 39 layers, each adding
      /many/<i> and rewriting /many/top.
  localhost/cpp-overlay-e2e/chain:1   base + 128 layers, each adding
      /chain/<i>. The test builds the same chain with `ctr snapshots
      prepare/commit`, naming each snapshot by its chain ID, so the image is
      "already unpacked" and `ctr run` mounts the hand-made chain.
  localhost/cpp-overlay-e2e/pause:1   base only; its entrypoint sleeps forever
      (the CRI sandbox image).

Besides the archives, writes <out>/chain-ids.txt (one chain ID per line, the
base first), <out>/layers-chain-ids.txt (the same for the layers image) and
<out>/base-layer-entries.txt (how many tar entries the base layer has).
Only the Python standard library is used.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
# A fixed timestamp keeps every blob (and so every chain ID) reproducible.
EPOCH = 1700000000


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layer:
    """One layer tar built in memory, entry by entry."""

    def __init__(self):
        self._buf = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buf, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name, kind, mode, uid=0, gid=0):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        info.mtime = EPOCH
        return info

    def dir(self, name, mode=0o755):
        self._tar.addfile(self._info(name, tarfile.DIRTYPE, mode))

    def file(self, name, data, mode=0o644, uid=0, gid=0):
        if isinstance(data, str):
            data = data.encode()
        info = self._info(name, tarfile.REGTYPE, mode, uid, gid)
        info.size = len(data)
        self._tar.addfile(info, io.BytesIO(data))

    def symlink(self, name, target):
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self._tar.addfile(info)

    def hardlink(self, name, target):
        info = self._info(name, tarfile.LNKTYPE, 0o644)
        info.linkname = target
        self._tar.addfile(info)

    def whiteout(self, path):
        """Deletes `path` (a file or a directory) of the lower layers."""
        head, tail = os.path.split(path)
        self.file(os.path.join(head, ".wh." + tail), b"")

    def opaque(self, directory):
        """Hides everything the lower layers hold in `directory`."""
        self.file(os.path.join(directory, ".wh..wh..opq"), b"")

    def entries(self):
        return len(self._tar.getmembers())

    def blob(self):
        """Returns (diff_id, gzip blob)."""
        self._tar.close()
        raw = self._buf.getvalue()
        gz = io.BytesIO()
        with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=6) as f:
            f.write(raw)
        return sha256(raw), gz.getvalue()


def base_layer(busybox):
    layer = Layer()
    for d in ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root",
              "proc", "sys", "dev", "run", "var", "etc/e2e", "opaque",
              "opaque/sub", "gone-dir"]:
        layer.dir(d, 0o700 if d == "root" else 0o755)
    layer.dir("tmp", 0o1777)
    with open(busybox, "rb") as f:
        layer.file("bin/busybox", f.read(), 0o755)
    applets = subprocess.run([busybox, "--list-full"], check=True,
                             capture_output=True, text=True).stdout.split()
    for applet in sorted(set(applets)):
        if applet != "bin/busybox":
            layer.symlink(applet, "/bin/busybox")
    layer.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    layer.file("etc/group", "root:x:0:\n")
    layer.file("etc/e2e/base.txt", "from the base layer\n")
    layer.file("etc/e2e/modify.txt", "v1\n")
    layer.file("etc/e2e/delete-me.txt", "deleted by layer 3\n")
    layer.file("opaque/old-a", "hidden by layer 4\n")
    layer.file("opaque/sub/old-b", "hidden by layer 4\n")
    layer.file("gone-dir/file", "deleted with its directory by layer 3\n")
    return layer.entries(), layer.blob()


def layers_image_layers(check_script):
    l2 = Layer()
    l2.dir("etc/e2e")
    l2.file("etc/e2e/layer2.txt", "added in layer 2\n")
    l2.hardlink("etc/e2e/layer2-link.txt", "etc/e2e/layer2.txt")
    l2.file("etc/e2e/modify.txt", "v2\n")
    l2.file("etc/e2e/private.txt", "mode 0600, owner 1234:5678\n", 0o600, 1234, 5678)

    l3 = Layer()
    l3.dir("etc/e2e")
    l3.file("etc/e2e/modify.txt", "v3\n")
    l3.whiteout("etc/e2e/delete-me.txt")
    l3.whiteout("gone-dir")
    l3.dir("layer3")
    l3.file("layer3/new.txt", "added in layer 3\n")

    l4 = Layer()
    l4.dir("opaque")
    l4.opaque("opaque")
    l4.file("opaque/new-c", "only entry after layer 4\n")
    l4.file("e2e-check.sh", check_script, 0o755)
    return [l2.blob(), l3.blob(), l4.blob()]


def numbered_layers(directory, count, top_file):
    blobs = []
    for i in range(1, count + 1):
        layer = Layer()
        layer.dir(directory)
        layer.file("%s/%d" % (directory, i), "%d\n" % i)
        if top_file:
            layer.file("%s/top" % directory, "%d\n" % i)
        blobs.append(layer.blob())
    return blobs


def chain_ids(diff_ids):
    ids = [diff_ids[0]]
    for diff_id in diff_ids[1:]:
        ids.append(sha256(("%s %s" % (ids[-1], diff_id)).encode()))
    return ids


def write_image(path, name, arch, layers, config_extra):
    """Writes one OCI image layout tar holding a single manifest."""
    blobs = {}

    def add(data):
        digest = sha256(data)
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    diff_ids = [diff_id for diff_id, _ in layers]
    layer_descs = [dict(mediaType=MEDIA_LAYER_GZIP, **add(blob)) for _, blob in layers]
    config = {
        "created": "2023-11-14T22:13:20Z",
        "architecture": arch,
        "os": "linux",
        "config": dict({"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                        "WorkingDir": "/"}, **config_extra),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2023-11-14T22:13:20Z",
                     "created_by": "cpp-overlay e2e layer %d" % i}
                    for i in range(len(layers))],
    }
    config_desc = dict(mediaType=MEDIA_CONFIG,
                       **add(json.dumps(config, sort_keys=True).encode()))
    manifest = {"schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
                "config": config_desc, "layers": layer_descs}
    manifest_desc = dict(mediaType=MEDIA_MANIFEST,
                         **add(json.dumps(manifest, sort_keys=True).encode()))
    manifest_desc["platform"] = {"architecture": arch, "os": "linux"}
    manifest_desc["annotations"] = {"io.containerd.image.name": name,
                                    "org.opencontainers.image.ref.name": name}
    index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX,
             "manifests": [manifest_desc]}

    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as out:
        def put(member, data, mode=0o644):
            info = tarfile.TarInfo(member)
            info.size, info.mode, info.mtime = len(data), mode, EPOCH
            out.addfile(info, io.BytesIO(data))
        put("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        put("index.json", json.dumps(index, sort_keys=True).encode())
        for digest, data in sorted(blobs.items()):
            put("blobs/sha256/" + digest.split(":", 1)[1], data)
    return chain_ids(diff_ids)


def go_arch():
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(machine, machine)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--busybox", default="/bin/busybox", help="static busybox binary")
    parser.add_argument("--check-script", required=True, help="script run inside the layers image")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    arch = go_arch()

    base_entries, base = base_layer(args.busybox)
    with open(os.path.join(args.out, "base-layer-entries.txt"), "w") as f:
        f.write("%d\n" % base_entries)
    with open(args.check_script, "rb") as f:
        check_script = f.read()

    ids = write_image(os.path.join(args.out, "layers.tar"), "localhost/cpp-overlay-e2e/layers:1",
                      arch, [base] + layers_image_layers(check_script), {"Cmd": ["/e2e-check.sh"]})
    with open(os.path.join(args.out, "layers-chain-ids.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")

    write_image(os.path.join(args.out, "many.tar"), "localhost/cpp-overlay-e2e/many:1",
                arch, [base] + numbered_layers("many", 39, True), {"Cmd": ["/bin/sh"]})

    ids = write_image(os.path.join(args.out, "chain.tar"), "localhost/cpp-overlay-e2e/chain:1",
                      arch, [base] + numbered_layers("chain", 128, False), {"Cmd": ["/bin/sh"]})
    with open(os.path.join(args.out, "chain-ids.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")

    write_image(os.path.join(args.out, "pause.tar"), "localhost/cpp-overlay-e2e/pause:1",
                arch, [base], {"Entrypoint": ["/bin/sleep", "2147483647"]})


if __name__ == "__main__":
    main()
