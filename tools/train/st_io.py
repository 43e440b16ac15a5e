"""The safetensors format by hand (Debian ships no safetensors package): read and write F32/F16/BF16."""
import json
import struct

import numpy as np
import torch

_NUMPY = {"F32": "<f4", "F16": "<f2", "U8": "u1", "I64": "<i8"}


def read(path):
    """name -> float32 torch tensor, and the metadata dict."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        lo, hi = v["data_offsets"]
        if v["dtype"] == "BF16":
            arr = (np.frombuffer(data[lo:hi], "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(data[lo:hi], _NUMPY[v["dtype"]]).astype(np.float32)
        out[name] = torch.from_numpy(arr.reshape(v["shape"]).copy())
    return out, header.get("__metadata__", {})


def write(path, state, metadata, dtype="F32"):
    """Tensors in order, as F32 or F16 (the values rounded to nearest)."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in state.items():
        b = t.detach().contiguous().to(torch.float32).numpy().astype(_NUMPY[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
