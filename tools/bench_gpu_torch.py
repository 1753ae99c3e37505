"""PyTorch reference timings for `vigil bench` (issue #8), by the same protocol, in one run.

Self-contained: needs torch only (torchvision optional: its wide_resnet50_2 is used when it
imports, else a local definition of the same architecture). No anomalib, no FrEIA.

RANDOM WEIGHTS: every model has torch's default random init (the flows' global scales and
permutations as FrEIA initialises them). The numbers are timings only; the maps mean
nothing. Eval mode, torch.inference_mode().

Models (structure-equivalent to what Vigil builds; see the C files named):
  effad-s, effad-m  EfficientAD as methods/efficientad/model.c + method.c defaults:
                    padding=False, out 384, student 768, ImageNet normalisation inside each
                    network (as anomalib), teacher output standardised by mean/std,
                    autoencoder with vg_effad_ae_forward's upsampling sizes, maps
                    mean_c (t - s[:384])^2 and mean_c (ae - s[384:])^2, pad 4 (pad_maps) +
                    bilinear to 256, quantile normalisation as one multiply-add each,
                    combined 0.5 (st + ae). One forward = teacher + student + AE
                    (anomalib's EfficientAdModel.forward in eval).
  fastflow          FastFlow, Wide-ResNet-50-2 layers 1-3, LayerNorm([C,H,W]) per scale,
                    8 AllInOne steps per scale (affine coupling, a = 0.1 subnet(x1),
                    s = 2.0 tanh(a_s) -- the FrEIA 0.2 / anomalib clamp Vigil uses --,
                    subnet conv3x3 / conv1x1 alternating, hidden ratio 1.0, global affine
                    0.1 softplus_{beta 0.5}, fixed channel permutation as a 1x1 conv),
                    log-det computed as anomalib does in eval, map = mean over scales of
                    -exp(-0.5 mean_c z^2) upsampled (methods/fastflow/fastflow.c).
  cflow             CFLOW-AD, Wide-ResNet-50-2 taps layer2..4 (methods/cflow/cflow.c
                    defaults), 2-D positional encoding (128, built on the host per call as
                    anomalib and Vigil do), per tap 8 conditional AllInOne blocks (clamp
                    1.9, channel permutation applied as a dense C x C matrix product --
                    the cost of Vigil's default soft (orthogonal) permutation and of
                    anomalib's hard one; a permutation matrix keeps random-weight values
                    bounded and needs no QR at start-up --, MLP subnet in -> 2 in -> out), run on all
                    N*H*W fibres at once, log p / C, exp(lp - max) upsampled
                    (align_corners=True), summed, max - map.
Structure-equivalent is enough for timing: same layers, shapes and op sequence; not
bit-equal to Vigil or anomalib.

Protocol (the EfficientAD paper's, as `vigil bench`): the batch is a random image tensor in
pinned host memory (in the model's dtype; --host-f32 keeps it f32 and casts on the
device, as `vigil bench` does); torch.cuda.synchronize() before each start; a run =
x.cuda(non_blocking=True) -> forward -> map.float().cpu() (f32 maps on the host, as vigil's
predict; synchronises) -> scores = per-image max of the host map; warm-up runs, then mean / median / min of the timed runs. Peak device memory
from torch.cuda.max_memory_allocated. Modes: eager; compile (torch.compile default mode);
compile-cg (torch.compile mode="reduce-overhead", i.e. CUDA graphs, the analogue of
`vigil bench --graph`). A compile that fails is recorded as
{"error": "compile failed: <reason>"} and the run goes on.

Output: one JSON line per model x dtype x batch x mode, shaped like `vigil bench`'s
(bench, method, model / backbone, input, device, dtype, batch, warmup, runs, mean_ms,
median_ms, min_ms, images_s, params, peak_device_live_mb, unix_time) plus "impl"
("torch-eager", "torch-compile", "torch-compile-cudagraphs"), "gpu", "torch". Appended
to --json FILE, else stdout; a table on stderr.

  python3 tools/bench_gpu_torch.py                       # CUDA: all models, f16+f32, batch 1+16, eager
  python3 tools/bench_gpu_torch.py --modes compile compile-cg --dtype f16 --budget-s 500
  /usr/bin/python3 tools/bench_gpu_torch.py --device cpu --runs 1 --warmup 1 --check   # a smoke test
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------- EfficientAD
class ImageNetNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class PDN(nn.Module):
    """PDN-S / PDN-M (model.c vg_effad_pdn_new; padding=False)."""

    def __init__(self, size, out):
        super().__init__()
        self.norm = ImageNetNorm()
        self.size = size
        if size == "s":
            self.conv1 = nn.Conv2d(3, 128, 4)
            self.conv2 = nn.Conv2d(128, 256, 4)
            self.conv3 = nn.Conv2d(256, 256, 3)
            self.conv4 = nn.Conv2d(256, out, 4)
        else:
            self.conv1 = nn.Conv2d(3, 256, 4)
            self.conv2 = nn.Conv2d(256, 512, 4)
            self.conv3 = nn.Conv2d(512, 512, 1)
            self.conv4 = nn.Conv2d(512, 512, 3)
            self.conv5 = nn.Conv2d(512, out, 4)
            self.conv6 = nn.Conv2d(out, out, 1)

    def forward(self, x):
        h = self.norm(x)
        h = F.avg_pool2d(F.relu(self.conv1(h)), 2, 2)
        h = F.avg_pool2d(F.relu(self.conv2(h)), 2, 2)
        h = F.relu(self.conv3(h))
        if self.size == "s":
            return self.conv4(h)
        h = F.relu(self.conv4(h))
        h = F.relu(self.conv5(h))
        return self.conv6(h)


class AutoEncoder(nn.Module):
    """model.c vg_effad_ae_new / vg_effad_ae_forward (padding=False, eval: no dropout)."""

    def __init__(self, out):
        super().__init__()
        self.norm = ImageNetNorm()
        self.enc = nn.ModuleList([nn.Conv2d(3, 32, 4, 2, 1), nn.Conv2d(32, 32, 4, 2, 1), nn.Conv2d(32, 64, 4, 2, 1),
                                  nn.Conv2d(64, 64, 4, 2, 1), nn.Conv2d(64, 64, 4, 2, 1), nn.Conv2d(64, 64, 8)])
        self.dec = nn.ModuleList([nn.Conv2d(64, 64, 4, 1, 2) for _ in range(6)] +
                                 [nn.Conv2d(64, 64, 3, 1, 1), nn.Conv2d(64, out, 3, 1, 1)])

    def forward(self, x):
        H, W = x.shape[2], x.shape[3]
        h = self.norm(x)
        for i, c in enumerate(self.enc):
            h = c(h)
            if i < 5:
                h = F.relu(h)
        c4 = lambda v: (v + 3) // 4  # noqa: E731
        sizes = [(H // 64 - 1, W // 64 - 1), (H // 32, W // 32), (H // 16 - 1, W // 16 - 1), (H // 8, W // 8),
                 (H // 4 - 1, W // 4 - 1), (H // 2 - 1, W // 2 - 1), (c4(H) - 8, c4(W) - 8)]
        for i, sz in enumerate(sizes):
            h = F.interpolate(h, size=sz, mode="bilinear", align_corners=False)
            h = F.relu(self.dec[i](h))
        return self.dec[7](h)


class EfficientAD(nn.Module):
    def __init__(self, size, out=384):
        super().__init__()
        self.C = out
        self.teacher = PDN(size, out)
        self.student = PDN(size, 2 * out)
        self.ae = AutoEncoder(out)
        # teacher statistics and map quantiles set, as after training (cli/bench.c does the same)
        g = torch.Generator().manual_seed(11)
        self.register_buffer("t_mean", (torch.rand(1, out, 1, 1, generator=g) * 0.2 - 0.1))
        self.register_buffer("t_std", (torch.rand(1, out, 1, 1, generator=g) + 0.5))
        qa_st, qb_st, qa_ae, qb_ae = 0.01, 0.2, 0.02, 0.3
        self.sst, self.sae = 0.1 / (qb_st - qa_st), 0.1 / (qb_ae - qa_ae)
        self.bst, self.bae = -qa_st * self.sst, -qa_ae * self.sae

    def params(self):
        return sum(p.numel() for p in self.parameters())

    def forward(self, x):
        H, W = x.shape[2], x.shape[3]
        C = self.C
        t = (self.teacher(x) - self.t_mean) / self.t_std
        s = self.student(x)
        a = self.ae(x)
        mst = ((t - s[:, :C]) ** 2).mean(1, keepdim=True)
        mae = ((a - s[:, C:]) ** 2).mean(1, keepdim=True)
        mst = F.interpolate(F.pad(mst, (4, 4, 4, 4)), size=(H, W), mode="bilinear", align_corners=False)
        mae = F.interpolate(F.pad(mae, (4, 4, 4, 4)), size=(H, W), mode="bilinear", align_corners=False)
        mst = mst * self.sst + self.bst
        mae = mae * self.sae + self.bae
        return 0.5 * (mst + mae)


# ---------------------------------------------------------------- Wide-ResNet-50-2
class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, width_per_group=128):
        super().__init__()
        width = int(planes * (width_per_group / 64.0))
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return self.relu(h + idt)


class LocalWRN50(nn.Module):
    """torchvision's wide_resnet50_2 (Bottleneck, [3, 4, 6, 3], width_per_group 128), no head."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for i, (planes, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]):
            ds = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
            layers = [Bottleneck(inplanes, planes, stride, ds)]
            inplanes = planes * 4
            layers += [Bottleneck(inplanes, planes) for _ in range(1, blocks)]
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*layers))


def wide_resnet50_2():
    try:
        import torchvision
        try:
            return torchvision.models.wide_resnet50_2(weights=None), "torchvision"
        except TypeError:  # torchvision < 0.13
            return torchvision.models.wide_resnet50_2(pretrained=False), "torchvision"
    except ImportError:
        return LocalWRN50(), "local"


class Features(nn.Module):
    """The backbone's layer outputs for `taps` (subset of 1..4), running only as far as needed."""

    def __init__(self, taps):
        super().__init__()
        net, self.source = wide_resnet50_2()
        self.taps = list(taps)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layers = nn.ModuleList([getattr(net, "layer%d" % i) for i in range(1, max(taps) + 1)])

    def forward(self, x):
        h = self.stem(x)
        out = []
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i + 1 in self.taps:
                out.append(h)
        return out


WRN_CH = {1: 256, 2: 512, 3: 1024, 4: 2048}


# ---------------------------------------------------------------- AllInOne coupling (FrEIA-equivalent)
class AllInOne(nn.Module):
    """FrEIA AllInOneBlock forward (flows/allinone.c allinone_fwd, not reversed): split
    [C - C//2, C//2], a = 0.1 subnet([x1, cond]), s = clamp tanh(a[:C//2]), y2 = x2 exp(s) +
    a[C//2:], out = perm((x1, y2) * 0.1 softplus_{0.5}(g) + offset); log-det."""

    def __init__(self, C, subnet, clamp, conv, soft, cond=0, seed=0):
        super().__init__()
        self.C, self.c1, self.c2, self.clamp, self.conv = C, C - C // 2, C // 2, clamp, conv
        self.subnet = subnet(self.c1 + cond, 2 * self.c2)
        shape = (1, C, 1, 1) if conv else (1, C)
        ga = 2.0 * math.log(math.exp(0.5 * 10.0 * 1.0) - 1.0)  # SOFTPLUS, init 1.0
        self.global_scale = nn.Parameter(torch.full(shape, ga))
        self.global_offset = nn.Parameter(torch.zeros(shape))
        g = torch.Generator().manual_seed(seed)
        if soft:
            w = torch.linalg.qr(torch.randn(C, C, generator=g))[0]
        else:
            w = torch.zeros(C, C)
            w[torch.arange(C), torch.randperm(C, generator=g)] = 1.0
        self.w_perm = nn.Parameter(w.view(C, C, 1, 1) if conv else w, requires_grad=False)

    def forward(self, x, cond=None):
        x1, x2 = x[:, :self.c1], x[:, self.c1:]
        a = self.subnet(x1 if cond is None else torch.cat([x1, cond], 1)) * 0.1
        s = self.clamp * torch.tanh(a[:, :self.c2])
        y2 = x2 * torch.exp(s) + a[:, self.c2:]
        scale = 0.1 * F.softplus(self.global_scale, beta=0.5)
        out = torch.cat([x1, y2], 1) * scale + self.global_offset
        out = F.conv2d(out, self.w_perm) if self.conv else F.linear(out, self.w_perm)
        npix = x[0, 0].numel()
        ld = s.flatten(1).sum(1) + torch.log(scale).sum() * npix
        return out, ld


def conv_subnet(k):
    def make(cin, cout):
        hidden = int(cin * 1.0)
        return nn.Sequential(nn.Conv2d(cin, hidden, k, padding=k // 2), nn.ReLU(), nn.Conv2d(hidden, cout, k, padding=k // 2))
    return make


def mlp_subnet(cin, cout):
    return nn.Sequential(nn.Linear(cin, 2 * cin), nn.ReLU(), nn.Linear(2 * cin, cout))


# ---------------------------------------------------------------- FastFlow
class FastFlow(nn.Module):
    def __init__(self, size=256, steps=8):
        super().__init__()
        self.fe = Features([1, 2, 3]).eval()
        self.norms = nn.ModuleList()
        self.flows = nn.ModuleList()
        for s, tap in enumerate([1, 2, 3]):
            C, hw = WRN_CH[tap], size // (4 << s)
            self.norms.append(nn.LayerNorm([C, hw, hw], eps=1e-5))
            self.flows.append(nn.ModuleList([AllInOne(C, conv_subnet(1 if i % 2 == 1 else 3), 2.0, True, False,
                                                      seed=100 * s + i) for i in range(steps)]))

    def params(self):
        return sum(p.numel() for p in self.parameters())

    def forward(self, x):
        H, W = x.shape[2], x.shape[3]
        feats = self.fe(x)
        maps = []
        for f, norm, flow in zip(feats, self.norms, self.flows):
            z = norm(f)
            ld = torch.zeros(z.shape[0], device=z.device, dtype=torch.float32)
            for blk in flow:
                z, j = blk(z)
                ld = ld + j.float()   # computed as anomalib does in eval, unused by the map
            lp = -0.5 * (z * z).mean(1, keepdim=True)
            maps.append(F.interpolate(-torch.exp(lp), size=(H, W), mode="bilinear", align_corners=False))
        return torch.stack(maps, -1).mean(-1)


# ---------------------------------------------------------------- CFLOW-AD
def positional_encoding_2d(D, H, W):
    pe = torch.zeros(D, H, W)
    d = D // 2
    div = torch.exp(torch.arange(0.0, d, 2) * -(math.log(1e4) / d))
    pw = torch.arange(0.0, W).unsqueeze(1)
    ph = torch.arange(0.0, H).unsqueeze(1)
    pe[0:d:2] = torch.sin(pw * div).transpose(0, 1).unsqueeze(1).repeat(1, H, 1)
    pe[1:d:2] = torch.cos(pw * div).transpose(0, 1).unsqueeze(1).repeat(1, H, 1)
    pe[d::2] = torch.sin(ph * div).transpose(0, 1).unsqueeze(2).repeat(1, 1, W)
    pe[d + 1::2] = torch.cos(ph * div).transpose(0, 1).unsqueeze(2).repeat(1, 1, W)
    return pe


class CFlow(nn.Module):
    def __init__(self, blocks=8, cond=128, clamp=1.9):
        super().__init__()
        self.cond = cond
        self.enc = Features([2, 3, 4]).eval()
        self.decoders = nn.ModuleList([
            nn.ModuleList([AllInOne(WRN_CH[tap], mlp_subnet, clamp, False, False, cond=cond, seed=100 * l + i)
                           for i in range(blocks)]) for l, tap in enumerate([2, 3, 4])])

    def params(self):
        return sum(p.numel() for p in self.parameters())

    def forward(self, x):
        H, W = x.shape[2], x.shape[3]
        acc = None
        for f, dec in zip(self.enc(x), self.decoders):
            N, C, h, w = f.shape
            e = f.permute(0, 2, 3, 1).reshape(N * h * w, C)
            pe = positional_encoding_2d(self.cond, h, w).to(device=f.device, dtype=f.dtype)  # host-built, as anomalib
            c = pe.permute(1, 2, 0).reshape(1, h * w, self.cond).expand(N, h * w, self.cond).reshape(N * h * w, self.cond)
            z, ld = e, torch.zeros(N * h * w, device=f.device, dtype=torch.float32)
            for blk in dec:
                z, j = blk(z, c)
                ld = ld + j.float()
            z = z.float()   # the log-likelihood in f32 (sum of 2048 squares overflows f16)
            lp = (C * -0.9189385332046727 - 0.5 * (z * z).sum(1) + ld) / C
            p = torch.exp(lp - lp.max()).reshape(N, 1, h, w)
            u = F.interpolate(p, size=(H, W), mode="bilinear", align_corners=True)
            acc = u if acc is None else acc + u
        return acc.max() - acc


MODELS = {
    "effad-s": ("efficientad", {"model": "s"}, lambda: EfficientAD("s")),
    "effad-m": ("efficientad", {"model": "m"}, lambda: EfficientAD("m")),
    "fastflow": ("fastflow", {"backbone": "wide_resnet50_2"}, FastFlow),
    "cflow": ("cflow", {"backbone": "wide_resnet50_2"}, CFlow),
}
IMPL = {"eager": "torch-eager", "compile": "torch-compile", "compile-cg": "torch-compile-cudagraphs"}


# ---------------------------------------------------------------- timing
def sync(dev):
    if dev == "cuda":
        torch.cuda.synchronize()


def time_config(fn, model_dtype, dev, B, size, warmup, runs, host_f32, mark_step):
    xdt = torch.float32 if host_f32 else model_dtype
    x = torch.rand(B, 3, size, size).to(xdt)
    if dev == "cuda":
        x = x.pin_memory()
    ts, last = [], None
    for r in range(warmup + runs):
        if mark_step:
            torch.compiler.cudagraph_mark_step_begin()
        sync(dev)
        t0 = time.perf_counter()
        xd = x.to(dev, non_blocking=True)
        if xd.dtype != model_dtype:
            xd = xd.to(model_dtype)
        m = fn(xd).float().cpu()   # f32 maps on the host, as vigil's predict; synchronises
        scores = m.reshape(B, -1).amax(1)
        el = time.perf_counter() - t0
        if r >= warmup:
            ts.append(el)
        last = (m, scores)
    return ts, last


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--dtype", nargs="+", default=None, choices=["f16", "f32"], help="default f16 f32 (cpu: f32)")
    ap.add_argument("--batch", nargs="+", type=int, default=[1, 16])
    ap.add_argument("--modes", nargs="+", default=["eager"], choices=list(IMPL))
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--input-size", type=int, default=256)
    ap.add_argument("--host-f32", action="store_true", help="host images in f32, cast on the device (as vigil bench)")
    ap.add_argument("--budget-s", type=float, default=0, help="skip (and record) configs once this many s have passed")
    ap.add_argument("--json", help="append the JSON lines here (default stdout)")
    ap.add_argument("--check", action="store_true", help="fail unless every map is finite and N x 1 x S x S")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (cpu device)")
    ap.add_argument("--tf32", action="store_true",
                    help="let f32 convolutions/matmuls use TF32 tensor cores (torch's cuDNN default); off by "
                         "default so f32 rows compare with Vigil's true-f32 GEMMs")
    a = ap.parse_args()
    t_start = time.perf_counter()
    dev = a.device
    if dev == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_gpu_torch: --device cuda but torch.cuda.is_available() is False "
                 "(torch %s; use --device cpu for a smoke test)" % torch.__version__)
    dtypes = a.dtype or (["f16", "f32"] if dev == "cuda" else ["f32"])
    if dev == "cpu" and "f16" in dtypes:
        sys.exit("bench_gpu_torch: --device cpu times f32 only")
    if a.threads:
        torch.set_num_threads(a.threads)
    gpu = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"
    if dev == "cuda":
        torch.backends.cudnn.benchmark = True
        # torch's defaults run f32 convolutions in TF32 (cudnn.allow_tf32 = True): not f32
        torch.backends.cudnn.allow_tf32 = a.tf32
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
    out = open(a.json, "a") if a.json else sys.stdout
    print("bench_gpu_torch: torch %s, %s, %dx%d, warm-up %d, runs %d, modes %s"
          % (torch.__version__, gpu, a.input_size, a.input_size, a.warmup, a.runs, " ".join(a.modes)), file=sys.stderr)
    print("%-9s %-4s %-26s %5s %10s %10s %10s %10s %9s" % ("model", "dt", "impl", "batch", "mean ms", "median ms",
                                                         "min ms", "images/s", "peak MB"), file=sys.stderr)
    bad = 0
    for key in a.models:
        method, ident, ctor = MODELS[key]
        torch.manual_seed(0)
        base = ctor().eval()
        params = base.params()
        for dts in dtypes:
            mdt = torch.float16 if dts == "f16" else torch.float32
            model = base.to(device=dev, dtype=mdt)
            for mode in a.modes:
                fn, err = model, None
                for B in a.batch:
                    rec = {"bench": "torch_bench", "impl": IMPL[mode], "method": method, **ident, "input": a.input_size,
                           "device": dev, "gpu": gpu, "dtype": dts, "host_input_dtype": "f32" if a.host_f32 else dts,
                           "batch": B, "warmup": a.warmup, "runs": a.runs, "params": params, "torch": torch.__version__,
                           "cudnn_benchmark": dev == "cuda", "tf32": bool(a.tf32 and dev == "cuda")}
                    if dev == "cpu":
                        rec["threads"] = torch.get_num_threads()
                    if a.budget_s and time.perf_counter() - t_start > a.budget_s:
                        err = err or "skipped: time budget (--budget-s %g) spent" % a.budget_s
                    if mode != "eager" and fn is model and not err:
                        if not hasattr(torch, "compile"):
                            err = "compile failed: torch.compile not available in torch %s" % torch.__version__
                        else:
                            try:
                                torch._dynamo.reset()   # a fresh cache: an earlier mode's code is not reused
                                fn = torch.compile(model, mode="reduce-overhead" if mode == "compile-cg" else None,
                                                   dynamic=False)
                            except Exception as e:  # noqa: BLE001
                                err = "compile failed: %s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
                    if err:
                        rec["error"] = err
                    else:
                        try:
                            if dev == "cuda":
                                torch.cuda.empty_cache()
                                torch.cuda.reset_peak_memory_stats()
                            t0 = time.perf_counter()
                            with torch.inference_mode():
                                ts, (m, sc) = time_config(fn, mdt, dev, B, a.input_size, a.warmup, a.runs, a.host_f32,
                                                          mode == "compile-cg" and hasattr(getattr(torch, "compiler", None),
                                                                                        "cudagraph_mark_step_begin"))
                            rec["wall_s"] = round(time.perf_counter() - t0, 3)
                            rec.update(mean_ms=1e3 * sum(ts) / len(ts), median_ms=1e3 * statistics.median(ts),
                                       min_ms=1e3 * min(ts), images_s=B * len(ts) / sum(ts))
                            if dev == "cuda":
                                rec["peak_device_live_mb"] = torch.cuda.max_memory_allocated() / 1048576.0
                                rec["peak_device_reserved_mb"] = torch.cuda.max_memory_reserved() / 1048576.0
                            shape_ok = tuple(m.shape) == (B, 1, a.input_size, a.input_size)
                            finite = bool(torch.isfinite(m.float()).all()) and bool(torch.isfinite(sc.float()).all())
                            rec["map_shape"] = list(m.shape)
                            rec["map_finite"] = finite
                            if a.check and not (shape_ok and finite):
                                bad += 1
                        except Exception as e:  # noqa: BLE001
                            msg = str(e).splitlines()[0] if str(e) else ""
                            rec["error"] = ("compile failed: " if mode != "eager" else "failed: ") + \
                                "%s: %s" % (type(e).__name__, msg[:300])
                            err = rec["error"] if mode != "eager" else None
                            if a.check:
                                bad += mode == "eager"
                    rec["unix_time"] = int(time.time())
                    out.write(json.dumps(rec, separators=(",", ":")) + "\n")
                    out.flush()
                    label = key
                    if "error" in rec:
                        print("%-9s %-4s %-26s %5d  %s" % (label, dts, IMPL[mode], B, rec["error"][:120]), file=sys.stderr)
                    else:
                        print("%-9s %-4s %-26s %5d %10.3f %10.3f %10.3f %10.1f %9.1f" % (
                            label, dts, IMPL[mode], B, rec["mean_ms"], rec["median_ms"], rec["min_ms"], rec["images_s"],
                            rec.get("peak_device_live_mb", 0.0)), file=sys.stderr, flush=True)
                del fn
            if dev == "cuda" and hasattr(torch, "_dynamo"):
                torch._dynamo.reset()
        del base, model
        if dev == "cuda":
            torch.cuda.empty_cache()
    if a.json:
        out.close()
    if bad:
        sys.exit("bench_gpu_torch: %d config(s) failed the --check (non-finite map, wrong shape or error)" % bad)


if __name__ == "__main__":
    main()
