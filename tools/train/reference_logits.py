#!/usr/bin/env python3
"""The training script's own forward on one episode, to check the engine against it: loads a model
folder written by train_tiny_f.py, runs query/support/mask PNGs through it, and compares the logits
D[1] - D[0] with the `logits` tensor of the engine's `segment --save-tensors` file.

  /usr/bin/python3 tools/train/reference_logits.py --src SRC --model models/synth-tiny-f \
      --query Q.png --support S.png --support-mask M.png --engine saved.safetensors
"""
import argparse
import json
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--src", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--query", required=True)
ap.add_argument("--support", required=True)
ap.add_argument("--support-mask", required=True)
ap.add_argument("--engine", required=True, help="the engine's --save-tensors file")
a = ap.parse_args()
sys.argv = [sys.argv[0], "--src", a.src, "--data", "-", "--out", "-", "--threads", "1"]
import train_tiny_f as t  # noqa: E402  (the same networks and forward as training)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import st_io  # noqa: E402

def load(model):
    nets = []
    for file, make in (("vae", lambda c: t.AutoencoderKL(**c)), ("unet", lambda c: t.UNet2DConditionModel(**c)),
                       ("clip", lambda c: t.alpha_clip.VisionTransformer(**c))):
        state, meta = st_io.read(f"{model}/{file}.safetensors")
        cfg = {k: v for k, v in json.loads(meta["config"]).items() if not k.startswith("_")}
        m = make(cfg)
        m.load_state_dict(state)
        nets.append(m.eval())
    return tuple(nets)


def image(path):
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].float() / 127.5 - 1


with torch.no_grad():
    nets = load(a.model)
    mask = torch.from_numpy((np.asarray(Image.open(a.support_mask).convert("L")) > 0).astype(np.float32))[None, None]
    ref = t.forward(nets, image(a.query), image(a.support), mask)[0].numpy()
engine, _ = st_io.read(a.engine)
d = engine["logits"].numpy().reshape(3, *ref.shape)  # NCHW D - alpha x of the engine
got = d[1] - d[0]
diff = np.abs(got - ref)
agree = np.mean((got > 0) == (ref > 0))
print(f"logits: max |engine - training forward| = {diff.max():.3e}, mean {diff.mean():.3e}, max |ref| {np.abs(ref).max():.3e}; "
      f"mask agreement {agree * 100:.4f}% of pixels")
