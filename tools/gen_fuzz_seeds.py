#!/usr/bin/env python3
"""Seed corpora for tests/fuzz/fuzz_pth.c and fuzz_safetensors.c (see tests/fuzz/README.md).

Writes build/fuzz/corpus_pth/ (each fixture checkpoint as is with mode byte 0, as
state_dict_only + to_f32 with mode byte 6, and its data.pkl + first storage wrapped with mode
byte 1) and build/fuzz/corpus_st/ (two small hand-made safetensors files: metadata and an empty
tensor; every dtype). Run from the repository root."""
import zipfile, glob, os, struct
out = 'build/fuzz/corpus_pth/'
for f in glob.glob('build/fixtures/pth/*') + glob.glob('build/fixtures/*.pth') + glob.glob('build/fixtures/*.ckpt'):
    b = open(f, 'rb').read()
    if len(b) > 65536: continue
    open(out + 'raw_' + os.path.basename(f), 'wb').write(b'\x00' + b)
    open(out + 'rawsd_' + os.path.basename(f), 'wb').write(b'\x06' + b)
    try:
        z = zipfile.ZipFile(f); names = z.namelist()
        pk = [x for x in names if x.endswith('/data.pkl')][0]; pre = pk[:-8]; pkl = z.read(pk)
        d0 = z.read(pre + 'data/0') if pre + 'data/0' in names else b''
        open(out + 'wrap_' + os.path.basename(f), 'wb').write(b'\x01' + struct.pack('<H', len(pkl)) + pkl + d0)
    except Exception: pass
def st(hdr, data):
    import json
    h = json.dumps(hdr, separators=(',', ':')).encode(); h += b' ' * ((8 - len(h) % 8) % 8)
    return struct.pack('<Q', len(h)) + h + data
o = 'build/fuzz/corpus_st/'
open(o + 'meta.st', 'wb').write(st({"__metadata__": {"format": "pt"}, "x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
    "e": {"dtype": "BF16", "shape": [0, 3], "data_offsets": [8, 8]}}, struct.pack('<2f', 1, 2)))
open(o + 'mix.st', 'wb').write(st({"b": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]}, "u": {"dtype": "U8", "shape": [1], "data_offsets": [3, 4]},
    "h": {"dtype": "F16", "shape": [2], "data_offsets": [4, 8]}, "l": {"dtype": "I64", "shape": [1], "data_offsets": [8, 16]},
    "d": {"dtype": "F64", "shape": [1, 1], "data_offsets": [16, 24]}, "q": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [24, 25]}}, bytes(range(25))))
