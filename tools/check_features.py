#!/usr/bin/env python3
"""Checks `vigil features` against torchvision on a torchvision-format checkpoint.

  /usr/bin/python3 tools/check_features.py resnet18 [wide_resnet50_2 ...]

Saves a seeded torchvision model as .pth (torch.save of state_dict, as torchvision's
downloads are), a random N x 3 x 256 x 256 input as .safetensors, runs ./vigil features,
and prints the max error of layer1..3 relative to each map's max |value|, plus the time
per image of torchvision (2 threads) next to the time vigil reports."""
import json, struct, subprocess, sys, time
import numpy as np
import torch, torchvision

torch.set_num_threads(2)


def st_write(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def st_read(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[8 + n + a:8 + n + b], dtype="<f4").reshape(v["shape"]).copy())
    return out


for name in sys.argv[1:] or ["resnet18"]:
    torch.manual_seed(0)
    m = getattr(torchvision.models, name)().eval()
    # non-trivial BN statistics, as a trained model has
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
    torch.save(m.state_dict(), f"/tmp/feat/{name}.pth")
    x = torch.randn(2, 3, 256, 256)
    st_write("/tmp/feat/x.safetensors", {"x": x})
    r = subprocess.run(["./vigil", "features", "--backbone", name, "--weights", f"/tmp/feat/{name}.pth",
                        "--layers", "1,2,3", "--input", "/tmp/feat/x.safetensors", "--out", "/tmp/feat/f.safetensors"],
                       capture_output=True, text=True, env={"VIGIL_THREADS": "2"})
    print(r.stdout.strip(), r.stderr.strip())
    got = st_read("/tmp/feat/f.safetensors")
    with torch.no_grad():
        h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        ref = {}
        for i in (1, 2, 3):
            h = getattr(m, f"layer{i}")(h)
            ref[f"layer{i}"] = h
        t0 = time.perf_counter()
        for _ in range(3):
            h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
            for i in (1, 2, 3):
                h = getattr(m, f"layer{i}")(h)
        tt = (time.perf_counter() - t0) / 3 / x.shape[0] * 1e3
    for k in ref:
        err = (got[k] - ref[k]).abs().max().item() / ref[k].abs().max().item()
        print(f"{name} {k} {tuple(ref[k].shape)} max err / max|ref| = {err:.2e}")
    print(f"{name}: torchvision {tt:.1f} ms/image (2 threads, batch 2)")
