"""Compact codes for stored feature vectors: fp16 (default), int8, or 1 bit per dimension.

Vectors are L2-normalised before coding, so only directions matter:
- ``int8``: q = round(127 · v / max|v|) with the per-row scale kept; 2× smaller than fp16.
- ``bit``: the sign of each coordinate, packed 8 per byte (16× smaller than fp16). Decoded to ±1/sqrt(d),
  whose dot products are 1 − 2·hamming/d, a monotone estimate of the angle (SimHash); QLESS reports that
  1-bit gradient features keep LESS's selection quality. ``bench/codes.py`` measures top-k recall against fp16.
Decoded vectors are re-normalised float32, ready for cosine scoring.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa

Codes = Literal["fp16", "int8", "bit"]


def vector_type(codes: Codes, dim: int) -> pa.DataType:
    if codes == "fp16":
        return pa.list_(pa.float16(), dim)
    if codes == "int8":
        return pa.list_(pa.int8(), dim)
    if dim % 8:
        raise ValueError(f"1-bit codes need a dimension divisible by 8, got {dim}")
    return pa.list_(pa.uint8(), dim // 8)


def encode(vectors: np.ndarray, codes: Codes) -> tuple[np.ndarray, np.ndarray]:
    """(N, d) float -> (code array, per-row scale (N,) float32)."""
    v = np.asarray(vectors, dtype=np.float32)
    ones = np.ones(len(v), dtype=np.float32)
    if codes == "fp16":
        return v.astype(np.float16), ones
    if codes == "int8":
        scale = np.abs(v).max(axis=1).clip(min=1e-30)
        return np.round(127 * v / scale[:, None]).astype(np.int8), scale.astype(np.float32)
    return np.packbits(v >= 0, axis=1), ones


def decode(codes_array: np.ndarray, codes: Codes, dim: int) -> np.ndarray:
    """Code array -> (N, d) float32, L2-normalised."""
    if codes == "bit":
        v = np.unpackbits(codes_array, axis=1, count=dim).astype(np.float32) * 2 - 1
    else:
        v = codes_array.astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True).clip(min=1e-30)
