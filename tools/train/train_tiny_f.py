#!/usr/bin/env python3
"""Trains the bundled tiny Ref LDM-Seg-f on the synthetic shape domain (`bin/refldmseg synth`).

Real diffusers v0.25.0 `UNet2DConditionModel` / `AutoencoderKL` and Alpha-CLIP's `VisionTransformer`
at tiny widths, wired as the engine runs -f (DESIGN.md): z = VAE.encode(query).mode * scaling,
tokens = tower(support 224, alpha)[:, 1:] (no ln_post, no proj), key mask = support mask nearest
to the tower's token grid (224 / patch: 16 x 16 at patch 14), pred = UNet(z, t=0, tokens, key mask), D = VAE.decode(pred / scaling), and the
mask is D[1] > D[0] (mask_alpha 0). All three networks are trained jointly, end to end, on the
logit D[1] - D[0] (binary cross-entropy + soft Dice), with two training-only auxiliary heads that
speed learning up and are not part of the model files (OUT/train-state.pt keeps them and the
optimizer's moments for --resume): the query's per-pixel kind (background + 5) from the UNet's last
up block, and the support object's kind from the tower tokens under its mask. Writes unet/vae/clip .safetensors with the
config in the metadata (F32; export_fp16.py makes the committed F16 copy), the form the engine's loader reads.

  /usr/bin/python3 tools/train/train_tiny_f.py --src SRC --data TRAIN_DIR --out models/tiny-synth \
      [--minutes 50] [--batch 8] [--seed 0]

SRC holds diffusers/, huggingface_hub/ and AlphaCLIP/ as ../shared/tools/onnx-export/README.md
unpacks them; TRAIN_DIR is `bin/refldmseg synth --out TRAIN_DIR --scenes 8000 --seed 1`.

Run it with jemalloc (Debian libjemalloc2) holding on to freed memory:
  LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 ...
With glibc's malloc PyTorch's large CPU buffers go back to the kernel and fault in again every step; with
transparent huge pages at `always` that cost ~45% of the run's CPU time in the kernel (stage 14's log).

On a CPU with AMX-BF16 (or AVX512-BF16) add --bf16: the forwards run under CPU autocast to bfloat16, so
oneDNN takes the convolutions and linears (weights, gradients and the optimizer stay fp32). Measured only
on the AMX Xeon (stages 20 and 21 of the model card); without bf16 hardware expect it to be slower.
"""
import argparse
import copy
import importlib.machinery
import importlib.util
import json
import math
import os
import sys
import time
import types

ap = argparse.ArgumentParser()
ap.add_argument("--src", required=True)
ap.add_argument("--data", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--minutes", type=float, default=50)
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--lr", type=float, default=1.5e-3)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--max-scenes", type=int, default=0, help="load at most this many scenes (0 = all)")
ap.add_argument("--threads", type=int, default=os.cpu_count())
ap.add_argument("--tower-minutes", type=float, default=0,
                help="first train the tower alone this long on the support-kind task (batches of 4 x --batch), then everything")
ap.add_argument("--support-kind-weight", type=float, default=0.2, help="weight of the support-kind auxiliary loss in joint training")
ap.add_argument("--support-kind-per-token", action="store_true",
                help="the support-kind loss on every token under the support's key mask, not on their mean")
ap.add_argument("--head-minutes", type=float, default=0,
                help="after --resume: first train only the fresh auxiliary heads this long (networks frozen), so their early gradients do not disturb the resumed weights")
ap.add_argument("--warmup-steps", type=int, default=100, help="linear learning-rate warm-up of the joint training")
ap.add_argument("--snapshot-minutes", type=float, default=0,
                help="also save the weights every this many minutes of joint training to OUT/snapshot-<step> (0: only OUT), to choose a stage on a validation set")
ap.add_argument("--resume", help="a model folder this script wrote (F32): start from its weights; with its train-state.pt (the auxiliary heads "
                "and the optimizer's moments, written beside the weights since session 24) and no network grown, training goes on "
                "where it stopped, else the heads and moments start afresh")
ap.add_argument("--tower-layers", type=int, default=0,
                help="transformer blocks of the tower (0: the resumed tower's, else 3); more than the resumed tower has appends blocks "
                     "whose output projections start at zero, so the deeper tower starts as the same function")
ap.add_argument("--tower-patch", type=int, default=0,
                help="the tower's patch size (224 / patch tokens a side; the key mask follows); resuming a tower of another patch "
                     "size resamples its patch embeddings (area) and positional embedding (bicubic)")
ap.add_argument("--tower-width", type=int, default=0,
                help="the tower's width (0: the resumed tower's, else 64); a multiple r of the resumed width copies every residual "
                     "channel and attention head r times (inputs of each linear divided by r, the UNet's encoder_hid_proj too), so the "
                     "wider tower starts as the same function; --widen-noise then breaks the copies' symmetry")
ap.add_argument("--widen-noise", type=float, default=0.02, help="with --tower-width: Gaussian noise, as a fraction of each widened tensor's std")
ap.add_argument("--bf16", action="store_true",
                help="forwards under CPU autocast to bfloat16 (weights, gradients and optimizer stay fp32): oneDNN runs "
                     "the convolutions and linears on AMX / AVX-512-BF16 where the CPU has them")
ap.add_argument("--accumulate", type=int, default=1,
                help="micro-batches of --batch whose gradients make one optimizer step (a batch of N x --batch in the memory of one)")
ap.add_argument("--weight-ema", type=float, default=0,
                help="also keep an exponential moving average of the networks' weights with this decay (e.g. 0.995) over the joint "
                     "steps and save it to OUT/ema (weights only), to score beside the last step's weights")
ap.add_argument("--cross-attention-32", action="store_true",
                help="cross-attention also at the 32 x 32 level (down_blocks.0 and up_blocks.2 as CrossAttn blocks); after --resume of a UNet "
                     "without it, the new attentions' proj_out starts at zero, so the UNet starts as the same function")
a = ap.parse_args()
if a.accumulate < 1:
    ap.error(f"--accumulate must be at least 1, got {a.accumulate}")
if not 0 <= a.weight_ema < 1:
    ap.error(f"--weight-ema must be in [0, 1), got {a.weight_ema}")

for p in ("diffusers/src", "huggingface_hub/src"):
    sys.path.insert(0, os.path.join(a.src, p))
# diffusers imports safetensors at module level; nothing here calls it (the writer below is ours).
for _name in ("safetensors", "safetensors.torch"):
    _m = types.ModuleType(_name)
    _m.__spec__ = importlib.machinery.ModuleSpec(_name, None)
    _m.__version__ = "0"
    sys.modules.setdefault(_name, _m)
sys.modules.setdefault("loralib", types.ModuleType("loralib"))  # only used with lora_adapt=True
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: E402

import st_io  # noqa: E402  (beside this script)

torch.set_num_threads(a.threads)
if a.bf16:  # PyTorch 1.13's CPU group / layer norms want input and affine of one type: normalise bf16 activations in fp32
    _group_norm, _layer_norm = F.group_norm, F.layer_norm
    F.group_norm = lambda x, groups, weight=None, bias=None, eps=1e-5: _group_norm(x.float(), groups, weight, bias, eps).to(x.dtype)
    F.layer_norm = lambda x, shape, weight=None, bias=None, eps=1e-5: _layer_norm(x.float(), shape, weight, bias, eps).to(x.dtype)
torch.manual_seed(a.seed)
rng = np.random.default_rng(a.seed)


def autocast():
    """The forwards' precision: bfloat16 under CPU autocast with --bf16, else fp32 (a no-op context)."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16)


spec = importlib.util.spec_from_file_location("alpha_clip_model", os.path.join(a.src, "AlphaCLIP", "alpha_clip", "model.py"))
alpha_clip = importlib.util.module_from_spec(spec)
spec.loader.exec_module(alpha_clip)

KINDS = ["disc", "square", "triangle", "ring", "plus"]
TOWER = dict(input_resolution=224, patch_size=14, width=64, layers=3, heads=4, output_dim=32)
VAE = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
           block_out_channels=[8, 16, 32, 64], layers_per_block=1, act_fn="silu", latent_channels=4, norm_num_groups=8,
           sample_size=256, scaling_factor=0.18215)
UNET = dict(sample_size=32, in_channels=4, out_channels=4, down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], block_out_channels=[48, 96, 128],
            layers_per_block=1, norm_num_groups=8, cross_attention_dim=64, attention_head_dim=4, encoder_hid_dim=TOWER["width"])


def load_data(root):
    """Every scene once (uint8 [N,256,256,3]), its kind map (0 = background, 1 + kind), and per kind
    the scenes showing it with their masks."""
    ids = sorted({int(f[:-4]) for k in KINDS for f in os.listdir(os.path.join(root, k)) if f.endswith(".jpg")})
    if a.max_scenes:
        ids = ids[:a.max_scenes]
    index = {s: i for i, s in enumerate(ids)}
    images = np.zeros((len(ids), 256, 256, 3), np.uint8)
    kind_maps = np.zeros((len(ids), 256, 256), np.uint8)
    done = set()
    per_kind = []
    for k in KINDS:
        scenes, masks = [], []
        for f in sorted(os.listdir(os.path.join(root, k))):
            if not f.endswith(".png") or int(f[:-4]) not in index:
                continue
            s = int(f[:-4])
            if s not in done:
                images[index[s]] = np.asarray(Image.open(os.path.join(root, k, f"{s}.jpg")).convert("RGB"))
                done.add(s)
            scenes.append(index[s])
            masks.append(np.asarray(Image.open(os.path.join(root, k, f))) > 0)
            kind_maps[index[s]][masks[-1]] = KINDS.index(k) + 1
        per_kind.append((np.array(scenes), np.stack(masks)))
        print(f"{k}: {len(scenes)} scenes", flush=True)
    return images, kind_maps, per_kind


def tower_tokens(vt, x, alpha):
    """The engine's instructions: the last block's tokens, class token dropped, no ln_post / proj."""
    h = vt.conv1(x) + vt.conv1_alpha(alpha)
    h = h.reshape(h.shape[0], h.shape[1], -1).permute(0, 2, 1)
    cls = vt.class_embedding.to(h.dtype) + torch.zeros(h.shape[0], 1, h.shape[-1], dtype=h.dtype)
    h = vt.ln_pre(torch.cat([cls, h], dim=1) + vt.positional_embedding.to(h.dtype))
    h = vt.transformer(h.permute(1, 0, 2)).permute(1, 0, 2)
    return h[:, 1:, :]


def forward(nets, query, support, support_mask, taps=None):
    """query/support float [B,3,256,256] in [-1, 1], support_mask float [B,1,256,256] -> logits [B,256,256].
    taps (training only): a dict that gets the tower tokens and key mask."""
    vae, unet, vt = nets
    z = vae.encode(query).latent_dist.mode() * VAE["scaling_factor"]
    tokens, keys = support_tokens(vt, support, support_mask)
    keys = keys[:, :, 0]
    if taps is not None:
        taps["tokens"], taps["keys"] = tokens, keys
    t = torch.zeros(query.shape[0], dtype=torch.long)
    pred = unet(z, t, encoder_hidden_states=tokens, encoder_attention_mask=keys).sample
    d = vae.decode(pred / VAE["scaling_factor"]).sample
    return d[:, 1] - d[:, 0]


def episode_batch(images, kind_maps, per_kind, n):
    """n 1-shot episodes: a kind, two different scenes showing it (support, query); also the kinds and the query's kind map."""
    q, s, sm, qm, kinds, qk = [], [], [], [], [], []
    for _ in range(n):
        k = rng.integers(len(KINDS))
        scenes, masks = per_kind[k]
        i, j = rng.choice(len(scenes), 2, replace=False)
        s.append(images[scenes[i]]); sm.append(masks[i]); q.append(images[scenes[j]]); qm.append(masks[j])
        kinds.append(k); qk.append(kind_maps[scenes[j]])
    img = lambda xs: torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return (img(q), img(s), torch.from_numpy(np.stack(sm)).float()[:, None], torch.from_numpy(np.stack(qm)).float(),
            torch.tensor(kinds), torch.from_numpy(np.stack(qk)).long())


def support_batch(images, per_kind, n):
    """n supports of random kinds: image, mask and kind (for the tower's own warm-up)."""
    s, sm, kinds = [], [], []
    for _ in range(n):
        k = rng.integers(len(KINDS))
        scenes, masks = per_kind[k]
        i = rng.integers(len(scenes))
        s.append(images[scenes[i]]); sm.append(masks[i]); kinds.append(k)
    return (torch.from_numpy(np.stack(s)).permute(0, 3, 1, 2).float() / 127.5 - 1, torch.from_numpy(np.stack(sm)).float()[:, None],
            torch.tensor(kinds))


def support_tokens(vt, support, support_mask):
    """The tower tokens of a support batch and its grid x grid key mask [B, T, 1] (as the forward makes them)."""
    sx = F.interpolate(support, size=(224, 224), mode="bilinear", align_corners=False)
    alpha = (F.interpolate(support_mask, size=(224, 224), mode="nearest") - 0.5) / 0.26
    grid = token_grid(TOWER["patch_size"])
    keys = F.interpolate(support_mask, size=(grid, grid), mode="nearest").flatten(1)[:, :, None]
    return tower_tokens(vt, sx, alpha), keys


def support_kind_loss(head, tokens, keys, kinds):
    """Cross-entropy of the support's kind from the tower tokens under its key mask, and the accuracy: of their mean,
    or with --support-kind-per-token of every such token (what the UNet's cross-attention reads is single tokens)."""
    keys = keys if keys.dim() == 3 else keys[:, :, None]
    pooled = head((tokens * keys).sum(1) / keys.sum(1).clamp(min=1))
    accuracy = (pooled.argmax(1) == kinds).float().mean().item()
    if not a.support_kind_per_token:
        return F.cross_entropy(pooled, kinds), accuracy
    b, t, _ = tokens.shape
    per_token = F.cross_entropy(head(tokens).flatten(0, 1), kinds.repeat_interleave(t), reduction="none").view(b, t)
    return ((per_token * keys[:, :, 0]).sum(1) / keys[:, :, 0].sum(1).clamp(min=1)).mean(), accuracy


def loss_fn(logits, truth):
    bce = F.binary_cross_entropy_with_logits(logits, truth)
    p = torch.sigmoid(logits)
    inter = (p * truth).sum((1, 2))
    dice = 1 - (2 * inter + 1) / (p.sum((1, 2)) + truth.sum((1, 2)) + 1)
    return bce + dice.mean(), p


def save(nets, out, step, train_state=None):
    vae, unet, vt = nets
    os.makedirs(out, exist_ok=True)
    if train_state is not None:  # not a model file: the engine never reads it, export_fp16.py leaves it out
        torch.save(train_state(), os.path.join(out, "train-state.pt"))
    st_io.write(os.path.join(out, "vae.safetensors"), vae.state_dict(),
                      {"config": json.dumps(dict(vae.config)), "layout": "diffusers AutoencoderKL v0.25.0", "trained_steps": str(step)})
    st_io.write(os.path.join(out, "unet.safetensors"), unet.state_dict(),
                      {"config": json.dumps(dict(unet.config)), "layout": "diffusers UNet2DConditionModel v0.25.0", "trained_steps": str(step)})
    st_io.write(os.path.join(out, "clip.safetensors"), vt.state_dict(),
                      {"config": json.dumps(TOWER), "layout": "alpha_clip VisionTransformer state_dict", "trained_steps": str(step)})


def read_resumed():
    """--resume's three files, each read once: {name: (tensors, config)}; empty without --resume."""
    if not a.resume:
        return {}
    out = {}
    for name in ("vae", "unet", "clip"):
        state, meta = st_io.read(os.path.join(a.resume, name + ".safetensors"))
        out[name] = (state, json.loads(meta["config"]))
    return out


def shape_configs(resumed):
    """TOWER and UNET as the resumed networks are, plus what this run adds (--tower-layers, --cross-attention-32).
    Returns the resumed tower's depth and whether the UNet gains its 32 x 32 attentions in this run."""
    saved_layers = resumed["clip"][1]["layers"] if resumed else TOWER["layers"]
    if a.tower_layers and a.tower_layers < saved_layers:
        sys.exit(f"--tower-layers {a.tower_layers}: the resumed tower has {saved_layers} blocks; this script only adds blocks")
    TOWER["layers"] = a.tower_layers or saved_layers
    if resumed:
        for key in ("patch_size", "width", "heads"):
            TOWER[key] = resumed["clip"][1][key]
        UNET["encoder_hid_dim"] = TOWER["width"]
    if a.tower_width and a.tower_width != TOWER["width"]:
        if not resumed or a.tower_width % TOWER["width"]:
            sys.exit(f"--tower-width {a.tower_width}: only a multiple of a resumed tower's width ({TOWER['width']}) is supported")
        widen_tower(resumed["clip"][0], resumed["unet"][0], a.tower_width // TOWER["width"])
    if a.tower_patch and a.tower_patch != TOWER["patch_size"]:
        if resumed:
            resample_patches(resumed["clip"][0], TOWER["patch_size"], a.tower_patch)
        TOWER["patch_size"] = a.tower_patch
    if resumed:
        UNET["down_block_types"] = list(resumed["unet"][1]["down_block_types"])
        UNET["up_block_types"] = list(resumed["unet"][1]["up_block_types"])
    grows_unet = a.cross_attention_32 and UNET["down_block_types"][0] != "CrossAttnDownBlock2D"
    if a.cross_attention_32:
        UNET["down_block_types"][0], UNET["up_block_types"][2] = "CrossAttnDownBlock2D", "CrossAttnUpBlock2D"
    return saved_layers, grows_unet


def widen_tower(clip, unet, r):
    """A tower state dict (and the UNet's encoder_hid_proj reading it) made r times wider, in place, as the same
    function: the residual stream x becomes [x]*r (LayerNorm of it is [LN x]*r, its statistics unchanged), every
    attention head and MLP unit is copied r times, and each linear's input columns are divided by r so it still
    sums to the old value. Heads keep their dimension, so the tower gets r times the heads."""
    def tile(t, dim):
        return torch.cat([t] * r, dim=dim)
    in_proj = [k for k in clip if k.endswith("attn.in_proj.weight") or k.endswith("attn.in_proj.bias")]
    for k, t in clip.items():
        t = t.float()
        if k in in_proj:  # rows are [q; k; v]: each third copied, so q, k and v each get the copied heads
            t = torch.cat([tile(part, 0) for part in t.chunk(3, 0)], 0)
            if t.dim() == 2:
                t = tile(t, 1) / r
        elif k == "proj" or k.endswith(("out_proj.weight", "c_fc.weight", "c_proj.weight")):
            t = tile(t, 1 if t.dim() == 2 and k != "proj" else 0) / r  # input side: the copies sum back to one
            if k != "proj":
                t = tile(t, 0)
        elif k == "positional_embedding":
            t = tile(t, 1)
        else:  # per-channel vectors, conv1 / conv1_alpha output channels, biases of residual outputs and MLP units
            t = tile(t, 0)
        if a.widen_noise > 0 and t.numel() > 1:
            t = t + torch.randn_like(t) * a.widen_noise * t.std()
        clip[k] = t
    unet["encoder_hid_proj.weight"] = tile(unet["encoder_hid_proj.weight"].float(), 1) / r
    print(f"tower: width {TOWER['width']} -> {TOWER['width'] * r}, heads {TOWER['heads']} -> {TOWER['heads'] * r} (copies, noise {a.widen_noise})", flush=True)
    TOWER["width"] *= r
    TOWER["heads"] *= r
    UNET["encoder_hid_dim"] = TOWER["width"]


def token_grid(patch):
    """Tokens a side of the tower at this patch size (the key mask's grid)."""
    return TOWER["input_resolution"] // patch


def resample_patches(state, old, new):
    """A tower state dict of patch size old made one of patch size new (in place): each patch embedding's kernel
    resampled by area and scaled by (old / new)^2, so a smooth image region gives about the same embedding; the
    positional embedding's grid resampled bicubically (the class token's row kept)."""
    for key in ("conv1.weight", "conv1_alpha.weight"):
        w = state[key].float()
        state[key] = F.interpolate(w, size=(new, new), mode="area") * (old / new) ** 2
    pos = state["positional_embedding"].float()
    g0, g1 = token_grid(old), token_grid(new)
    grid = pos[1:].reshape(g0, g0, -1).permute(2, 0, 1)[None]
    grid = F.interpolate(grid, size=(g1, g1), mode="bicubic", align_corners=False)[0].permute(1, 2, 0).reshape(g1 * g1, -1)
    state["positional_embedding"] = torch.cat([pos[:1], grid])
    print(f"tower: patch {old} -> {new} ({g0}x{g0} -> {g1}x{g1} tokens), patch and positional embeddings resampled", flush=True)


def load_grown(module, state, added, what):
    """Loads a resumed network that this run may have grown by residual blocks: added maps each new block's key
    prefix to its output projections, which start at zero, so every new block adds 0 and the grown network starts
    as the same function. Any other missing or unexpected tensor is an error."""
    missing, unexpected = module.load_state_dict(state, strict=False)
    if unexpected or any(not m.startswith(tuple(added)) for m in missing):
        sys.exit(f"{what} checkpoint does not match: missing {missing[:8]}, unexpected {unexpected[:8]}")
    with torch.no_grad():
        for projections in added.values():
            for proj in projections:
                proj.weight.zero_()
                proj.bias.zero_()
    if added:
        print(f"{what}: {len(added)} new blocks starting as the identity ({', '.join(added)})", flush=True)


def main():
    resumed = read_resumed()
    saved_layers, grows_unet = shape_configs(resumed)
    images, kind_maps, per_kind = load_data(a.data)
    vae = AutoencoderKL(**VAE).to(memory_format=torch.channels_last)  # faster convolutions on the CPU
    unet = UNet2DConditionModel(**UNET).to(memory_format=torch.channels_last)
    vt = alpha_clip.VisionTransformer(**TOWER)
    nets = (vae, unet, vt)
    if resumed:
        vae.load_state_dict(resumed["vae"][0])
        new_attentions = {f"{name}.attentions.{j}.": (attn.proj_out,) for name, block in
                          (("down_blocks.0", unet.down_blocks[0]), ("up_blocks.2", unet.up_blocks[2])) for j, attn in enumerate(block.attentions)
                          } if grows_unet else {}
        load_grown(unet, resumed["unet"][0], new_attentions, "UNet")
        load_grown(vt, resumed["clip"][0], {f"transformer.resblocks.{i}.": (b.attn.out_proj, b.mlp.c_proj)
                                            for i, b in enumerate(vt.transformer.resblocks) if i >= saved_layers}, "tower")
        print("resumed from", a.resume, flush=True)
    # training-only heads: per-pixel kind of the query from the last up block, kind of the support from its masked tokens
    pixel_head = torch.nn.Conv2d(UNET["block_out_channels"][0], len(KINDS) + 1, 1)
    support_head = torch.nn.Linear(TOWER["width"], len(KINDS))
    last_up = {}
    unet.up_blocks[-1].register_forward_hook(lambda m, i, o: last_up.__setitem__("h", o))
    params = [p for m in nets for p in m.parameters()] + list(pixel_head.parameters()) + list(support_head.parameters())
    state_file = os.path.join(a.resume, "train-state.pt") if a.resume else None
    carried = None
    if state_file and os.path.exists(state_file):
        if grows_unet or TOWER["layers"] != saved_layers or a.tower_patch or a.tower_width:
            print("train-state.pt not used: this run changes the networks' shapes", flush=True)
        else:
            carried = torch.load(state_file)
            pixel_head.load_state_dict(carried["pixel_head"])
            support_head.load_state_dict(carried["support_head"])
            print(f"restored the auxiliary heads and optimizer moments of {a.resume} (step {carried['step']} of that run)", flush=True)
    if a.tower_minutes > 0:
        tower_params = list(vt.parameters()) + list(support_head.parameters())
        topt = torch.optim.AdamW(tower_params, lr=a.lr, weight_decay=1e-4)
        t0, tstep, tema = time.time(), 0, None
        while time.time() - t0 < a.tower_minutes * 60:
            s, sm, kinds = support_batch(images, per_kind, 4 * a.batch)
            with autocast():
                tokens, keys = support_tokens(vt, s, sm)
            tl, acc = support_kind_loss(support_head, tokens.float(), keys, kinds)
            topt.zero_grad(set_to_none=True)
            tl.backward()
            torch.nn.utils.clip_grad_norm_(tower_params, 1.0)
            topt.step()
            tema = acc if tema is None else 0.95 * tema + 0.05 * acc
            tstep += 1
            if tstep % 25 == 0:
                print(f"tower step {tstep} {(time.time() - t0) / 60:.1f} min loss {tl.item():.3f} kind accuracy (EMA) {tema:.3f}", flush=True)
    if a.head_minutes > 0:
        head_params = list(pixel_head.parameters()) + list(support_head.parameters())
        hopt = torch.optim.AdamW(head_params, lr=1e-3, weight_decay=1e-4)
        t0, hstep = time.time(), 0
        while time.time() - t0 < a.head_minutes * 60:
            q, s, sm, qm, kinds, qk = episode_batch(images, kind_maps, per_kind, a.batch)
            taps = {}
            with torch.no_grad(), autocast():
                forward(nets, q.to(memory_format=torch.channels_last), s, sm, taps)
            hl = (F.cross_entropy(pixel_head(last_up["h"].float()), qk[:, 4::8, 4::8])
                  + support_kind_loss(support_head, taps["tokens"].float(), taps["keys"], kinds)[0])
            hopt.zero_grad(set_to_none=True)
            hl.backward()
            hopt.step()
            hstep += 1
            if hstep % 25 == 0:
                print(f"head step {hstep} {(time.time() - t0) / 60:.1f} min loss {hl.item():.3f}", flush=True)
    print("parameters:", {type(m).__name__: sum(p.numel() for p in m.parameters()) for m in nets}, flush=True)
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=1e-4)
    if carried is not None:
        opt.load_state_dict(carried["optimizer"])  # its learning rate is overwritten below at every step
    train_state = lambda: {"pixel_head": pixel_head.state_dict(), "support_head": support_head.state_dict(),
                           "optimizer": opt.state_dict(), "step": step}
    budget, start, step, ema = a.minutes * 60, time.time(), 0, None
    averaged = copy.deepcopy(nets) if a.weight_ema > 0 else None

    def save_run():
        save(nets, a.out, step, train_state)
        if averaged is not None:
            save(averaged, os.path.join(a.out, "ema"), step)
    next_snapshot = a.snapshot_minutes * 60 if a.snapshot_minutes > 0 else math.inf
    while True:
        elapsed = time.time() - start
        if elapsed > budget:
            break
        # linear warm-up, then cosine to 5% over the time budget
        frac = elapsed / budget
        lr = a.lr * min(1.0, (step + 1) / max(1, a.warmup_steps)) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        for _ in range(a.accumulate):  # the losses are batch means, so N micro-batches of B give a batch of N x B's gradient
            q, s, sm, qm, kinds, qk = episode_batch(images, kind_maps, per_kind, a.batch)
            taps = {}
            with autocast():
                logits = forward(nets, q.to(memory_format=torch.channels_last), s, sm, taps).float()
                pixel_logits = pixel_head(last_up["h"]).float()
                support_kind = support_kind_loss(support_head, taps["tokens"].float(), taps["keys"], kinds)[0]
            loss, p = loss_fn(logits, qm)
            pixel_kind = F.cross_entropy(pixel_logits, qk[:, 4::8, 4::8])
            loss = loss + 0.5 * pixel_kind + a.support_kind_weight * support_kind
            (loss / a.accumulate).backward()
            with torch.no_grad():
                pred = logits > 0
                iou = ((pred & (qm > 0)).sum() / ((pred | (qm > 0)).sum() + 1)).item()
            ema = iou if ema is None else 0.98 * ema + 0.02 * iou
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if averaged is not None:
            with torch.no_grad():
                decay = min(a.weight_ema, (1 + step) / (10 + step))
                for mean_net, net in zip(averaged, nets):
                    for mean_p, p_ in zip(mean_net.parameters(), net.parameters()):
                        mean_p.mul_(decay).add_(p_, alpha=1 - decay)
        step += 1
        if step % 25 == 0:
            print(f"step {step} {elapsed / 60:.1f} min lr {lr:.2e} loss {loss.item():.4f} (pixel kind {pixel_kind.item():.3f}, "
                  f"support kind {support_kind.item():.3f}) batch IoU (EMA) {ema:.3f}", flush=True)
        if step % 250 == 0:
            save_run()
        if time.time() - start >= next_snapshot:
            save(nets, os.path.join(a.out, f"snapshot-{step}"), step)
            next_snapshot += a.snapshot_minutes * 60
    save_run()
    print(f"done: {step} steps in {(time.time() - start) / 60:.1f} min, saved to {a.out}", flush=True)


if __name__ == "__main__":
    main()
