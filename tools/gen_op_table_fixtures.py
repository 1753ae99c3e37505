#!/usr/bin/env python3
"""PyTorch fixtures for tests/test_op_table.c, from tests/op_table.def itself.

Parses every T / T_MORE row of tests/op_table.def (its header documents the format): the
input shapes and value ranges, the torch expression and the flags. Per row (key NAME or
NAME.tag) it stores, in tests/fixtures/ops/op_table.vgfx:
  KEY.in0..   the inputs: Philox uniform in [lo, hi), seed (crc32(key) << 8) + I, stored as
              seed records (fixtures.philox_uniform: no data, the C reader regenerates them)
  KEY.out     the torch expression's result (as f32)
  KEY.r       R for rows with OT_GRAD (Philox U(-1, 1), seed ... + 255, a seed record too):
              grads are those of L = sum(out * R)
  KEY.gradI   the grad of every input that wants one (OT_GRAD without OT_NOGRAD(I))
  KEY.sig     the CRC-32 of the torch expression as two 16-bit halves (the test says
              "stale" when the row's expression no longer matches the fixture)
Run from the repo root with the venv's torch 2.x:
  /work/venv/bin/python tools/gen_op_table_fixtures.py"""
import ast
import math
import os
import re
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import philox_uniform as fx_philox_uniform, write  # noqa: E402
import philox  # noqa: E402

TABLE = "tests/op_table.def"
OUT = "tests/fixtures/ops/op_table.vgfx"


# ---- parsing the table ----
def strip_comments(src):
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if c == '"':
            j = i + 1
            while src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append(src[i:j + 1])
            i = j + 1
        elif src.startswith("/*", i):
            i = src.index("*/", i + 2) + 2
            out.append(" ")
        elif src.startswith("//", i):
            i = src.index("\n", i)
        else:
            out.append(c)
            i += 1
    return "".join(out)


def split_args(s):
    """top-level comma split (parens, braces, brackets and strings nest)"""
    args, depth, cur, i = [], 0, [], 0
    while i < len(s):
        c = s[i]
        if c == '"':
            j = i + 1
            while s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            cur.append(s[i:j + 1])
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if "".join(cur).strip():
        args.append("".join(cur).strip())
    return args


def call_args(s, name):
    """'name(a, b)' -> ['a', 'b']"""
    s = s.strip()
    if not (s.startswith(name + "(") and s.endswith(")")):
        raise ValueError(f"expected {name}(...), got {s!r}")
    return split_args(s[len(name) + 1:-1])


def rows(path=TABLE):
    src = strip_comments(open(path).read())
    out = []
    for m in re.finditer(r"^\s*(T|T_MORE|T_VIA)\s*\(", src, re.M):
        kind, i, depth = m.group(1), m.end(), 1
        j = i
        while depth:
            c = src[j]
            if c == '"':
                j += 1
                while src[j] != '"':
                    j += 2 if src[j] == "\\" else 1
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            j += 1
        args = split_args(src[i:j - 1])
        if kind == "T_VIA":
            continue
        if kind == "T_MORE":
            name, tag, rest = args[0], args[1], args[2:]
            key = f"{name}.{tag}"
        else:
            name, rest = args[0], args[1:]
            key = name
        if len(rest) != 5:
            raise ValueError(f"{key}: want INPUTS, C_EXPR, TORCH, TOL, FLAGS; got {len(rest)} fields")
        inputs_s, _cexpr, torch_s, tol_s, flags_s = rest
        ins = []
        if inputs_s.strip() != "NOIN":
            for a in call_args(inputs_s, "INS"):
                shape_s, lo_s, hi_s = call_args(a, "IN")
                shape = ast.literal_eval(shape_s)
                shape = (shape,) if isinstance(shape, int) else tuple(shape)
                ins.append((shape, float(ast.literal_eval(lo_s)), float(ast.literal_eval(hi_s))))
        lits = re.findall(r'"((?:[^"\\]|\\.)*)"', torch_s)
        if not lits or "\\" in "".join(lits):
            raise ValueError(f"{key}: torch expression must be plain string literal(s) without escapes")
        expr = "".join(lits)
        grad = bool(re.search(r"\bOT_GRAD\b", flags_s))
        nograd = {int(x) for x in re.findall(r"OT_NOGRAD\(\s*(\d+)\s*\)", flags_s)}
        out.append(dict(key=key, ins=ins, expr=expr, grad=grad, nograd=nograd))
    return out


# ---- the torch side ----
def philox_uniform(shape, lo, hi, seed):
    return torch.from_numpy(philox.uniform_range(tuple(shape), lo, hi, seed).copy())


def philox_normal(shape, mean, std, seed):
    """vg_normal_ (tensor/kmath/philox.h vg_philox_normal_at): Box-Muller on stream 1"""
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.uint64)
    w = philox.philox(i >> np.uint64(1), 1, seed)
    h = (i & np.uint64(1)).astype(np.int64) * 2
    words = np.stack(w, axis=1)
    a = words[np.arange(n), h]
    b = words[np.arange(n), h + 1]
    s = np.float32(1.0 / 16777216.0)
    u1 = ((a >> np.uint64(8)).astype(np.float32) + np.float32(1)) * s
    u2 = (b >> np.uint64(8)).astype(np.float32) * s
    v = np.sqrt(np.float32(-2) * np.log(u1)) * np.cos(np.float32(6.28318530717958648) * u2)
    v = (np.float32(mean) + np.float32(std) * v.astype(np.float32)).astype(np.float32)
    return torch.from_numpy(v.reshape(shape))


def main():
    T = {}
    table = rows()
    for r in table:
        key = r["key"]
        # inputs and R: Philox U(lo, hi), seed (crc32(key) << 8) + i (R: + 255), stored as
        # their seed and range (fixtures.philox_uniform; the test's fixture reader expands them)
        seed0 = zlib.crc32(key.encode()) << 8
        xs = []
        for i, (shape, lo, hi) in enumerate(r["ins"]):
            x = fx_philox_uniform(tuple(shape), lo, hi, seed0 + i)
            T[f"{key}.in{i}"] = x
            xs.append(x.clone().requires_grad_(r["grad"] and i not in r["nograd"]))
        env = dict(torch=torch, F=F, math=math, philox_uniform=philox_uniform, philox_normal=philox_normal)
        env.update({f"x{i}": x for i, x in enumerate(xs)})
        y = eval(r["expr"], env)
        T[f"{key}.out"] = y.detach().float()
        if r["grad"]:
            R = fx_philox_uniform(tuple(y.shape), -1.0, 1.0, seed0 + 255)
            T[f"{key}.r"] = R
            (y * R).sum().backward()
            for i, x in enumerate(xs):
                if i in r["nograd"]:
                    continue
                T[f"{key}.grad{i}"] = x.grad if x.grad is not None else torch.zeros_like(x)
        crc = zlib.crc32(r["expr"].encode())
        T[f"{key}.sig"] = np.array([crc >> 16, crc & 0xFFFF], dtype=np.float32)
    write(OUT, T)
    print(f"{len(table)} rows, {len(T)} tensors -> {OUT} ({os.path.getsize(OUT)} bytes), torch {torch.__version__}")


if __name__ == "__main__":
    main()
