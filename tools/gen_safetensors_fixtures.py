#!/usr/bin/python3
"""Writes tests/fixtures/safetensors/*.safetensors with the reference `safetensors`
package, for tests/test_safetensors.c to read back exactly.

Values come from formulas the C test recomputes (no expected-value files):
  f(i)   = ((i * 37) % 101 - 50) / 8      (exact in f32, f16 and bf16)
  i64(i) = (i - 3) * 1000000000007        (needs all 64 bits)
  i32(i) = (i - 5) * 100003
  u8(i)  = (i * 7) % 256
  b(i)   = i % 3 == 0
  d(i)   = 0.1 * i                        (f64; read back as float(0.1 * i))
  s(i)   = i - 4                          (i16: a dtype Vigil validates but does not read)

Files:
  torch_mixed.safetensors  safetensors.torch.save_file: f32 (2,3,4), f16 (5,), bf16 (3,2),
                           i64 (4,), i32 (2,2), u8 (7,), bool (6,), a 0-d f32, an empty
                           (0, 3) f32; metadata {"format": "pt", "note": "caf\u00e9"}
  numpy_f64.safetensors    safetensors.numpy.save_file: f64 (3, 4), f32 (1,)
  numpy_i16.safetensors    safetensors.numpy.save_file: i16 (5,), u8 (2,)

Run: python3 -m venv --system-site-packages /tmp/stvenv && /tmp/stvenv/bin/pip install safetensors
     /tmp/stvenv/bin/python tools/gen_safetensors_fixtures.py   (torch, numpy, safetensors)
"""
import os

import numpy as np
import torch
import safetensors
from safetensors.numpy import save_file as np_save
from safetensors.torch import save_file as torch_save

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "safetensors")


def f(n):
    return np.array([((i * 37) % 101 - 50) / 8.0 for i in range(n)], dtype=np.float64)


def main():
    os.makedirs(OUT, exist_ok=True)
    t = {
        "layer1.0.conv1.weight": torch.tensor(f(24), dtype=torch.float32).reshape(2, 3, 4),
        "half": torch.tensor(f(5), dtype=torch.float16),
        "brain": torch.tensor(f(6), dtype=torch.float32).to(torch.bfloat16).reshape(3, 2),
        "steps": torch.tensor([(i - 3) * 1000000000007 for i in range(4)], dtype=torch.int64),
        "ints": torch.tensor([(i - 5) * 100003 for i in range(4)], dtype=torch.int32).reshape(2, 2),
        "bytes": torch.tensor([(i * 7) % 256 for i in range(7)], dtype=torch.uint8),
        "mask": torch.tensor([i % 3 == 0 for i in range(6)], dtype=torch.bool),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }
    torch_save(t, os.path.join(OUT, "torch_mixed.safetensors"), metadata={"format": "pt", "note": "caf\u00e9"})
    np_save({"double": np.array([0.1 * i for i in range(12)], dtype=np.float64).reshape(3, 4),
             "one": np.array([-1.5], dtype=np.float32)},
            os.path.join(OUT, "numpy_f64.safetensors"))
    np_save({"shorts": np.array([i - 4 for i in range(5)], dtype=np.int16),
             "u": np.array([1, 255], dtype=np.uint8)},
            os.path.join(OUT, "numpy_i16.safetensors"))
    print("safetensors", safetensors.__version__, "->", OUT)


if __name__ == "__main__":
    main()
