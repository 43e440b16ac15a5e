#!/usr/bin/env python3
"""Splits an `evaluate --out DIR` run's episodes by the pixel area of the query's truth and of the
support mask (1 shot): episodes, mean episode IoU and the share under 0.3 per area band.

  /usr/bin/python3 tools/train/iou_by_area.py DIR/report.csv

Support masks are read beside their images (FSS-1000 layout: <n>.jpg and <n>.png), as `synth` writes them.
"""
import csv
import sys

import numpy as np
from PIL import Image

BANDS = [(0, 1000), (1000, 2000), (2000, 4000), (4000, None)]


def area(png):
    return int((np.asarray(Image.open(png).convert("L")) > 127).sum())


def report(name, areas, iou):
    for lo, hi in BANDS:
        m = (areas >= lo) & (areas < (hi if hi is not None else np.inf))
        if m.any():
            band = f"{lo}-{hi} px" if hi is not None else f"over {lo} px"
            print(f"{name} {band}: {m.sum()} episodes, mean IoU {iou[m].mean():.3f}, under 0.3: {(iou[m] < 0.3).mean():.0%}")


rows = list(csv.DictReader(open(sys.argv[1])))
iou = np.array([float(r["iou"]) for r in rows])
print(f"{len(rows)} episodes, {(iou < 0.3).sum()} under 0.3 IoU; the {(iou >= 0.7).sum()} at 0.7 or more average {iou[iou >= 0.7].mean():.3f}")
report("truth", np.array([area(r["truth"]) for r in rows]), iou)
report("support", np.array([area(r["supports"].split(";")[0].rsplit(".", 1)[0] + ".png") for r in rows]), iou)
