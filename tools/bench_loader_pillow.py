"""Reference for bench/bench_loader.c: the same 900x900 PNGs decoded by Pillow (libpng/zlib)
and put through torchvision's Resize(256)+ToTensor+Normalize on one thread.
Run from the repo root: /usr/bin/python3 tools/bench_loader_pillow.py"""
import io, os, tempfile, time
from PIL import Image
import torch, torchvision.transforms as T

torch.set_num_threads(1)
photos = ["dog.jpg", "eagle.jpg", "person.jpg"]
d = tempfile.mkdtemp()
paths = []
for p in photos:
    im = Image.open(os.path.join("tests/data/photos", p)).convert("RGB").resize((900, 900), Image.BICUBIC)
    for v, var in enumerate([im, im.transpose(Image.FLIP_LEFT_RIGHT), im.transpose(Image.FLIP_TOP_BOTTOM), im.rotate(7.0, Image.BILINEAR)]):
        path = os.path.join(d, f"{len(paths):03d}.png")
        var.save(path)
        paths.append(path)
tf = T.Compose([T.Resize((256, 256)), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
t = time.perf_counter()
for _ in range(2):
    for p in paths:
        Image.open(p).load()
dt = (time.perf_counter() - t) / (2 * len(paths))
print(f"pillow png_decode_900_ms threads=1 {dt*1e3:.2f} ms/image")
t = time.perf_counter()
for _ in range(2):
    for p in paths:
        tf(Image.open(p).convert("RGB"))
dt = (time.perf_counter() - t) / (2 * len(paths))
print(f"pillow+torchvision decode+resize+normalize threads=1 {1/dt:.2f} images/s")
