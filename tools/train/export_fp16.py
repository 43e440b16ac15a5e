#!/usr/bin/env python3
"""Rewrites a model folder of train_tiny_f.py (F32) as F16 safetensors, the form that is committed
(half the bytes; the engine widens fp16 exactly). Refuses a value fp16 cannot hold.

  /usr/bin/python3 tools/train/export_fp16.py --model /tmp/train-run/model --out models/synth-tiny-f
"""
import argparse
import os

import torch

import st_io

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--out", required=True)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
for name in ("unet", "vae", "clip"):
    state, meta = st_io.read(os.path.join(a.model, name + ".safetensors"))
    worst = 0.0
    for k, t in state.items():
        if t.abs().max() > 65504:
            raise SystemExit(f"{name}.{k}: |value| {t.abs().max():.3g} does not fit fp16")
        err = (t.half().float() - t).abs().max().item()
        worst = max(worst, err)
    st_io.write(os.path.join(a.out, name + ".safetensors"), state, meta, "F16")
    print(f"{name}: {len(state)} tensors, {sum(t.numel() for t in state.values()):,} values, largest fp16 rounding {worst:.2e}")
