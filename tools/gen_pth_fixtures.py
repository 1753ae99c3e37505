"""Writes tests/fixtures/pth/: torch.save checkpoints (torch 1.13) read by tests/test_pth.c,
and a corpus of malicious or malformed pickles and zips that the reader must refuse.

Run with the python that has torch:  /usr/bin/python3 tools/gen_pth_fixtures.py
Tensor values follow formulas the C test recomputes (base[i] = 0.5*i - 2, ...)."""
import collections
import io
import os
import struct
import zipfile
import zlib

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "pth")


def path(name):
    return os.path.join(OUT, name)


def state_dict():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.5 - 2   # base[i] = 0.5 i - 2
    sd = collections.OrderedDict()
    sd["base"] = base
    sd["base_t"] = base.t()                 # view: same storage, strides (1, 4)
    sd["base_sub"] = base[1:, 2:]           # view: offset 6, size (2, 2), strides (4, 1)
    sd["half"] = torch.arange(5, dtype=torch.float16) * 0.25 + 1     # 1 + 0.25 i
    sd["bf16"] = torch.arange(3, dtype=torch.bfloat16) * 2 - 1       # 2 i - 1
    sd["f64"] = torch.arange(3, dtype=torch.float64) / 4             # i / 4
    sd["idx"] = torch.tensor([-3, 0, 7, 2**40], dtype=torch.int64)
    sd["i32"] = torch.tensor([1, -2, 3], dtype=torch.int32)
    sd["u8"] = torch.tensor([0, 255, 7], dtype=torch.uint8)
    sd["mask"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(3.5)
    sd["bn.num_batches_tracked"] = torch.tensor(0)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.arange(4, dtype=torch.float32) - 1.5)   # i - 1.5
    sd["nested"] = collections.OrderedDict(inner=collections.OrderedDict(x=torch.ones(2) * 9))
    sd["count"] = 7
    sd["rate"] = 0.125
    sd["flag"] = True
    sd["note"] = "skipped"
    sd["none"] = None
    return sd


def save(obj, name, **kw):
    torch.save(obj, path(name), **kw)


def deflate_copy(src, dst):
    """Re-packs a torch.save archive with every entry deflated."""
    with zipfile.ZipFile(path(src)) as zi, zipfile.ZipFile(path(dst), "w", zipfile.ZIP_DEFLATED) as zo:
        for info in zi.infolist():
            zo.writestr(info.filename, zi.read(info.filename))


# ---- a minimal zip writer that can be told to lie ----

def mkzip(entries, method=0, comment=b"", flags=0, lie=None):
    """entries: list of (name, bytes). lie(kind, index, dict) may alter header fields."""
    out = io.BytesIO()
    central = []
    for i, (name, data) in enumerate(entries):
        nb = name.encode()
        comp = data if method != 8 else zlib.compress(data, 9)[2:-4]
        f = dict(crc=zlib.crc32(data), csize=len(comp), usize=len(data), method=method, name=nb,
                 flags=flags, offset=out.tell(), lname=nb, lcsize=len(comp), lusize=len(data),
                 lcrc=zlib.crc32(data))
        if lie:
            lie("entry", i, f)
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, f["flags"], f["method"], 0, 0,
                              f["lcrc"], f["lcsize"], f["lusize"], len(f["lname"]), 0))
        out.write(f["lname"])
        out.write(comp)
        central.append(f)
    cd = out.tell()
    for f in central:
        out.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 20, 20, f["flags"], f["method"], 0, 0,
                              f["crc"], f["csize"], f["usize"], len(f["name"]), 0, 0, 0, 0, 0,
                              f["offset"]))
        out.write(f["name"])
    end = out.tell()
    e = dict(count=len(entries), cdsize=end - cd, cd=cd)
    if lie:
        lie("eocd", 0, e)
    out.write(struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, e["count"], e["count"], e["cdsize"],
                          e["cd"], len(comment)))
    out.write(comment)
    return out.getvalue()


# ---- pickle building blocks (protocol 2) ----

def S(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def I(n):
    return b"J" + struct.pack("<i", n)


def G(mod, name):
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


ODICT = G("collections", "OrderedDict") + b")R"


def tensor(key="0", cls="FloatStorage", numel=4, offset=0, size=(4,), stride=(1,)):
    tup = lambda xs: b"(" + b"".join(I(x) for x in xs) + b"t"
    return (G("torch._utils", "_rebuild_tensor_v2") + b"(" +
            b"(" + S("storage") + G("torch", cls) + S(key) + S("cpu") + I(numel) + b"tQ" +
            I(offset) + tup(size) + tup(stride) + b"\x89" + ODICT + b"tR")


def archive(pkl, storages=None, name="archive", method=0, extra=()):
    storages = storages if storages is not None else {"0": struct.pack("<4f", 1, 2, 3, 4)}
    ents = [(name + "/data.pkl", pkl)]
    ents += [(name + "/data/" + k, v) for k, v in storages.items()]
    ents += [(name + "/version", b"3\n")]
    ents += list(extra)
    return mkzip(ents, method=method)


GOOD = b"\x80\x02" + ODICT + S("w") + tensor() + b"s."


def bad(name, data):
    with open(path("bad_" + name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    torch.manual_seed(0)
    sd = state_dict()
    save(sd, "basic.pth")                                  # torch 1.13 default: protocol 2
    save(sd, "proto4.pth", pickle_protocol=4)              # FRAME, MEMOIZE, STACK_GLOBAL
    save(collections.OrderedDict(a=torch.ones(2)), "proto5.pth", pickle_protocol=5)
    deflate_copy("basic.pth", "deflated.pth")
    inner = collections.OrderedDict([("model.a", torch.ones(2) * 3), ("model.b", torch.tensor(1))])
    save({"state_dict": inner, "epoch": 3, "global_step": 30,
          "hyper_parameters": {"lr": 0.1, "name": "x"},
          "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]}]},
         "lightning.ckpt")
    import argparse
    save({"state_dict": inner, "epoch": 3, "hyper_parameters": argparse.Namespace(lr=0.1)},
         "lightning_ns.ckpt")
    bad("lightning_sd_global.ckpt", archive(b"\x80\x02}(" + S("state_dict") + ODICT + S("x") +
                                            G("os", "system") + S("ls") + b"\x85Rs" + S("epoch") +
                                            I(3) + b"u."))
    save(sd, "legacy.pth", _use_new_zipfile_serialization=False)
    # the writer above must produce archives the reader accepts
    with open(path("good_min.pth"), "wb") as f:
        f.write(archive(GOOD))
    with open(path("good_min_deflated.pth"), "wb") as f:
        f.write(archive(GOOD, method=8))

    # ---- malicious / malformed pickles ----
    P = b"\x80\x02"
    bad("os_system.pth", archive(P + G("os", "system") + S("echo pwned") + b"\x85R."))
    bad("builtins_eval.pth", archive(P + G("builtins", "eval") + S("1+1") + b"\x85R."))
    bad("posix_system.pth", archive(P + G("posix", "system") + S("id") + b"\x85R."))
    bad("stack_global_popen.pth", archive(b"\x80\x04" + b"\x8c\x0asubprocess\x8c\x05Popen\x93" + S("ls") + b"\x85R."))
    bad("numpy_global.pth", archive(P + G("numpy.core.multiarray", "_reconstruct") + b")R."))
    bad("reduce_storage.pth", archive(P + G("torch", "FloatStorage") + I(4) + b"\x85R."))
    bad("reduce_odict_args.pth", archive(P + G("collections", "OrderedDict") + b"]\x85R."))
    bad("reduce_str.pth", archive(P + S("os.system") + b")R."))
    bad("unknown_opcode.pth", archive(P + b"}\xff."))
    bad("inst.pth", archive(P + b"(ios\nsystem\n."))
    bad("obj.pth", archive(P + b"(}o."))
    bad("newobj.pth", archive(P + G("collections", "OrderedDict") + b")\x81."))
    bad("ext1.pth", archive(P + b"\x82\x01."))
    bad("setitem_list.pth", archive(P + b"]" + S("k") + I(1) + b"s."))
    bad("append_dict.pth", archive(P + b"}" + I(1) + b"a."))
    bad("memo_range.pth", archive(P + b"}q\x00h\x05."))
    bad("stack_underflow.pth", archive(P + I(1) + b"\x86."))
    bad("truncated.pth", archive(P + b"}" + b"X\x10\x00\x00\x00abc"))
    bad("no_stop.pth", archive(P + b"}"))
    bad("tuple_no_mark.pth", archive(P + I(1) + b"t."))
    bad("leftover.pth", archive(P + b"}}."))
    bad("persid_missing.pth", archive(P + ODICT + S("w") + tensor(key="9") + b"s."))
    bad("storage_size.pth", archive(P + ODICT + S("w") + tensor(numel=100) + b"s."))
    bad("extent.pth", archive(P + ODICT + S("w") + tensor(offset=2) + b"s."))
    bad("extent_stride.pth", archive(P + ODICT + S("w") + tensor(size=(2, 2), stride=(3, 1)) + b"s."))
    bad("proto6.pth", archive(b"\x80\x06}."))
    bad("persid_tuple.pth", archive(P + S("storage") + b"\x85Q."))
    bad("build_list.pth", archive(P + b"]}b."))
    bad("top_list.pth", archive(P + b"]."))
    bad("dup_key.pth", archive(P + ODICT + b"(" + S("w") + I(1) + S("w") + I(2) + b"u."))
    bad("hooks.pth", archive(P + ODICT + S("w") + tensor().replace(b"\x89" + ODICT, b"\x89}" + S("h") + I(1) + b"s") + b"s."))
    bad("long1_huge.pth", archive(P + b"\x8a\x09" + b"\x01" * 9 + b"."))
    # ---- malformed zips ----
    good = archive(GOOD)
    bad("zip_truncated.pth", good[: len(good) - 30])
    bad("zip_crc.pth", mkzip([("archive/data.pkl", GOOD), ("archive/data/0", struct.pack("<4f", 1, 2, 3, 4))],
                             lie=lambda k, i, f: k == "entry" and i == 1 and f.update(crc=f["crc"] ^ 1, lcrc=f["crc"] ^ 1)))
    bad("zip_name_mismatch.pth", mkzip([("archive/data.pkl", GOOD), ("archive/data/0", b"\0" * 16)],
                                       lie=lambda k, i, f: k == "entry" and i == 1 and f.update(lname=b"archive/data/1")))
    bad("zip_size_mismatch.pth", mkzip([("archive/data.pkl", GOOD), ("archive/data/0", b"\0" * 16)],
                                       lie=lambda k, i, f: k == "entry" and i == 1 and f.update(lusize=15, lcsize=15)))
    bad("zip_overlap.pth", mkzip([("archive/data.pkl", GOOD), ("archive/data/0", b"\0" * 16)],
                                 lie=lambda k, i, f: k == "entry" and i == 0 and
                                 f.update(csize=f["csize"] + 20, usize=f["usize"] + 20,
                                          lcsize=f["csize"] + 20, lusize=f["usize"] + 20)))
    bad("zip_method.pth", mkzip([("archive/data.pkl", GOOD)], lie=lambda k, i, f: k == "entry" and f.update(method=12)))
    bad("zip_encrypted.pth", mkzip([("archive/data.pkl", GOOD)], flags=1))
    bad("zip_count.pth", mkzip([("archive/data.pkl", GOOD)], lie=lambda k, i, e: k == "eocd" and e.update(count=60000)))
    bad("zip_cd_range.pth", mkzip([("archive/data.pkl", GOOD)], lie=lambda k, i, e: k == "eocd" and e.update(cd=e["cd"] + 1000)))
    bad("zip_dup.pth", mkzip([("archive/data.pkl", GOOD), ("archive/data.pkl", GOOD)]))
    bad("zip_no_pkl.pth", mkzip([("archive/other", b"x")]))
    bad("zip_bomb.pth", mkzip([("archive/data.pkl", GOOD)], method=8,
                              lie=lambda k, i, f: k == "entry" and f.update(usize=1 << 31)))
    bad("zip_inflate.pth", mkzip([("archive/data.pkl", b"A" * 1000)], method=8,
                                 lie=lambda k, i, f: k == "entry" and f.update(usize=999, lusize=999)))
    # zip64: a valid zip64 EOCD whose entry count is huge
    z = bytearray(mkzip([("archive/data.pkl", GOOD)]))
    eocd = len(z) - 22
    cd_size, cd_off = struct.unpack("<II", z[eocd + 12:eocd + 20])
    rec = struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, 1 << 40, 1 << 40, cd_size, cd_off)
    loc = struct.pack("<IIQI", 0x07064b50, 0, eocd, 1)
    tail = struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    bad("zip64_count.pth", bytes(z[:eocd]) + rec + loc + tail)
    # a zip with a comment, holding a good checkpoint: must load
    with open(path("good_comment.pth"), "wb") as f:
        f.write(mkzip([("x/data.pkl", GOOD), ("x/data/0", struct.pack("<4f", 1, 2, 3, 4))],
                      comment=b"PK\x05\x06 a comment that looks like a record"))
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("wrote %d files, %d bytes" % (len(os.listdir(OUT)), total))


if __name__ == "__main__":
    main()
