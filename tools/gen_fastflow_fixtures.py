"""Fixtures for tests/test_fastflow.c: anomalib 2.7's FastflowModel (imported from
/work/anomalib_src with light stubs for timm / anomalib.data / omegaconf; the vendored
AllInOneBlock is anomalib's own file; FrEIA 0.2 from PYTHONPATH=/work/pydeps).

timm's resnet features_only (out_indices 1,2,3) is replaced by torchvision's ResNet cut
after layer3 (same module names conv1, bn1, layer1.. and the same features).

Weights, identical on the C side without storing them:
  backbone  Philox scheme of vg_resnet_init_philox (base seed 1000), tools/gen_backbone_fixtures.py
  norms / flows  the sin formula of tools/gen_flow_fixtures.py over the full anomalib name
                 ("norms.0.weight", "fast_flow_blocks.0.module_list.3.subnet.0.weight"...),
                 global_scale = FrEIA init + formula
  permutations   exported as index vectors perm.<scale>.<step> (w_perm[i, p[i]] = 1)
Inputs: Philox uniform(-2, 2), x seed 7; training batches seed 100 + step.
Stored (per case): loss, ld.<s> (log-det), zs.<s> (every ZSTRIDE-th element of z; "zstride"), map (every MAPSTRIDE-th; "mapstride"),
score, curve (20 training steps: loss before each Adam step, lr 1e-3, wd 1e-5), and after
training map_t.
Also writes fastflow_anomalib.pth: a plain state_dict with anomalib's keys ("model."
prefix, as Lightning's) of a tiny model (input 32, 1 step, hidden_ratio 1/16), deflated,
with its map on the Philox input (fastflow_anomalib.bin).
For tests/test_cli.c (`vigil predict --from-anomalib`): fastflow_cli.png, a 48 x 40 RGB
Philox image, and fastflow_cli.bin: "x", the tensor Vigil's loader makes of it (Pillow
BILINEAR resize to 32 x 32 as torchvision's Resize, ToTensor, ImageNet Normalize), and
"map" / "score", the tiny model's anomaly map on x (the model of fastflow_anomalib.pth).

Run: PYTHONPATH=/work/pydeps /usr/bin/python3 tools/gen_fastflow_fixtures.py [--wrn | --wrn-only]
(--wrn-only: just fastflow_wrn50.bin, the WRN50 case: alternating 3x3/1x1 subnets, z every 17th)"""
import collections, importlib.util, os, sys, types, zipfile
import numpy as np
import torch
import torch.nn as nn
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixtures  # noqa: E402
import philox  # noqa: E402
from gen_backbone_fixtures import init_philox  # noqa: E402
from gen_flow_fixtures import formula  # noqa: E402

ANOMALIB = fixtures.anomalib_dir()
OUT = os.path.join(HERE, "..", "tests", "fixtures")
ZSTRIDE = 15
MAPSTRIDE = 5   # maps keep every 5th value (coprime with the sides)


class TvFeatures(nn.Module):
    """timm features_only stand-in: torchvision ResNet up to the last requested layer."""

    def __init__(self, name, layers):
        super().__init__()
        m = getattr(torchvision.models, name)(weights=None)
        self.layers = layers
        last = max(layers)
        self.conv1, self.bn1, self.relu, self.maxpool = m.conv1, m.bn1, m.relu, m.maxpool
        for k in range(1, last + 1):
            setattr(self, "layer%d" % k, getattr(m, "layer%d" % k))
        chans = {"resnet18": [64, 64, 128, 256, 512]}.get(name, [64, 256, 512, 1024, 2048])
        self.feature_info = types.SimpleNamespace(channels=lambda: [chans[k] for k in layers],
                                                  reduction=lambda: [2 ** (k + 1) for k in layers])

    def forward(self, x):
        h = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = []
        for k in range(1, max(self.layers) + 1):
            h = getattr(self, "layer%d" % k)(h)
            if k in self.layers:
                out.append(h)
        return out


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_anomalib():
    """Registers stubs and returns a namespace with anomalib's fastflow/cflow modules."""
    timm = types.ModuleType("timm")
    timm.create_model = lambda name, pretrained=False, features_only=True, out_indices=(1, 2, 3): \
        TvFeatures(name, list(out_indices))
    tm = types.ModuleType("timm.models")
    cait = types.ModuleType("timm.models.cait")
    cait.Cait = type("Cait", (nn.Module,), {})
    vit = types.ModuleType("timm.models.vision_transformer")
    vit.VisionTransformer = type("VisionTransformer", (nn.Module,), {})
    oc = types.ModuleType("omegaconf")
    oc.ListConfig = list
    for n, m in [("timm", timm), ("timm.models", tm), ("timm.models.cait", cait),
                 ("timm.models.vision_transformer", vit), ("omegaconf", oc)]:
        sys.modules[n] = m
    pk = {}
    for n in ["anomalib", "anomalib.models", "anomalib.models.components", "anomalib.models.image",
              "anomalib.models.image.fastflow", "anomalib.models.image.cflow"]:
        pk[n] = types.ModuleType(n)
        pk[n].__path__ = []
        sys.modules[n] = pk[n]
    data = types.ModuleType("anomalib.data")
    data.InferenceBatch = collections.namedtuple("InferenceBatch", "pred_score anomaly_map")
    sys.modules["anomalib.data"] = data
    aio = _load("anomalib.models.components.flow", ANOMALIB + "/models/components/flow/all_in_one_block.py")
    comp = pk["anomalib.models.components"]
    comp.flow = aio

    class TimmFeatureExtractor(nn.Module):
        def __init__(self, backbone, layers, pre_trained=True, requires_grad=False):
            super().__init__()
            self.layers = list(layers)
            self.idx = [int(l[-1]) for l in self.layers]
            self.feature_extractor = TvFeatures(backbone, self.idx)
            self.out_dims = self.feature_extractor.feature_info.channels()

        def forward(self, x):
            return dict(zip(self.layers, self.feature_extractor(x)))
    comp.TimmFeatureExtractor = TimmFeatureExtractor
    ns = types.SimpleNamespace()
    ns.ff_map = _load("anomalib.models.image.fastflow.anomaly_map", ANOMALIB + "/models/image/fastflow/anomaly_map.py")
    ns.ff_loss = _load("anomalib.models.image.fastflow.loss", ANOMALIB + "/models/image/fastflow/loss.py")
    ns.ff = _load("anomalib.models.image.fastflow.torch_model", ANOMALIB + "/models/image/fastflow/torch_model.py")
    return ns


def perm_index(w):
    w = w.detach().reshape(w.shape[0], w.shape[1])
    return w.argmax(dim=1).numpy().astype(np.float32)


def set_weights(model, d):
    """backbone Philox, the rest by formula; permutations exported into d."""
    init_philox(model.feature_extractor, 1000)
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            if name.startswith("feature_extractor.") or not t.dtype.is_floating_point:
                continue
            leaf = name.split(".")[-1]
            if leaf == "w_perm":
                p = name.split(".")
                d["perm.%s.%s" % (p[1], p[3])] = perm_index(t)
                continue
            if leaf == "w_perm_inv":
                continue
            v = formula(name, tuple(t.shape))
            if leaf == "global_scale":
                v = v + t.detach().double().numpy()
            t.copy_(torch.from_numpy(v).float())


def case(ns, tag, backbone, size, steps_train, zstride=None, **kw):
    torch.manual_seed(0)
    model = ns.ff.FastflowModel(input_size=(size, size), backbone=backbone, pre_trained=False, **kw)
    d = {}
    set_weights(model, d)
    x = torch.from_numpy(philox.uniform_range((2, 3, size, size), -2, 2, 7))
    crit = ns.ff_loss.FastflowLoss()
    model.train()
    z, ld = model(x)
    loss = crit(z, ld)
    d["loss"] = np.array([loss.item()], np.float32)
    d["zstride"] = np.array([zstride or ZSTRIDE], np.float32)
    for s in range(len(z)):
        d["ld.%d" % s] = ld[s].detach().numpy()
        d["zs.%d" % s] = z[s].detach().numpy().reshape(-1)[::zstride or ZSTRIDE].copy()
    model.eval()
    with torch.no_grad():
        out = model(x)
    d["map"] = out.anomaly_map.numpy().reshape(-1)[::MAPSTRIDE].copy()
    d["mapstride"] = np.array([MAPSTRIDE], np.float32)
    d["score"] = out.pred_score.numpy().reshape(-1)
    if steps_train:
        model.train()
        opt = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()), lr=1e-3, weight_decay=1e-5)
        curve = []
        for i in range(steps_train):
            b = torch.from_numpy(philox.uniform_range((2, 3, size, size), -2, 2, 100 + i))
            opt.zero_grad()
            z, ld = model(b)
            l = crit(z, ld)
            l.backward()
            opt.step()
            curve.append(l.item())
        d["curve"] = np.array(curve, np.float32)
        model.eval()
        with torch.no_grad():
            d["map_t"] = model(x).anomaly_map.numpy().reshape(-1)[::MAPSTRIDE].copy()
    path = os.path.join(OUT, "fastflow_%s.bin" % tag)
    fixtures.write(path, d)
    print(tag, os.path.getsize(path), "bytes")
    return model


def write_deflated_pth(sd, path):
    tmp = path + ".tmp"
    torch.save(sd, tmp)
    with zipfile.ZipFile(tmp) as zi, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zo:
        for info in zi.infolist():
            zo.writestr(info.filename, zi.read(info.filename))
    os.remove(tmp)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def cli_image(path, w, h, seed):
    """A Philox RGB u8 image written as PNG; returns the PIL image."""
    from PIL import Image
    px = (philox.uniform_range((h, w, 3), 0, 1, seed) * 255.0 + 0.5).astype(np.uint8)
    im = Image.fromarray(px, "RGB")
    im.save(path, optimize=True)
    return im


def loader_tensor(im, size):
    """What Vigil's loader (vg_imagenet_transform) makes of a PIL image: torchvision's
    Resize((size, size)) (Pillow BILINEAR), ToTensor, Normalize(ImageNet)."""
    from PIL import Image
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    t = torch.from_numpy(np.asarray(im, dtype=np.float32).transpose(2, 0, 1).copy()) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)
    return ((t - mean) / std).unsqueeze(0)


def main():
    torch.set_num_threads(2)
    ns = load_anomalib()
    case(ns, "r18", "resnet18", 64, 20, flow_steps=8, conv3x3_only=True, hidden_ratio=1.0)
    if "--wrn" in sys.argv or "--wrn-only" in sys.argv:
        case(ns, "wrn50", "wide_resnet50_2", 64, 0, zstride=51, flow_steps=8, conv3x3_only=False, hidden_ratio=1.0)
        if "--wrn-only" in sys.argv:
            return
    m = case(ns, "anomalib", "resnet18", 32, 0, flow_steps=1, conv3x3_only=True, hidden_ratio=1.0 / 16)
    sd = collections.OrderedDict(("model." + k, v) for k, v in m.state_dict().items()
                                 if not k.startswith("feature_extractor."))
    path = os.path.join(OUT, "fastflow_anomalib.pth")
    write_deflated_pth(sd, path)
    print("pth", os.path.getsize(path), "bytes")
    # vigil predict --from-anomalib: one PNG at another size than the input, its map
    im = cli_image(os.path.join(OUT, "fastflow_cli.png"), 48, 40, 21)
    x = loader_tensor(im, 32)
    m.eval()
    with torch.no_grad():
        o = m(x)
    path = os.path.join(OUT, "fastflow_cli.bin")
    fixtures.write(path, {"x": x.numpy(), "map": o.anomaly_map.numpy(), "score": o.pred_score.numpy().reshape(-1)})
    print("cli", os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
