"""Read a .safetensors file with torch alone.

Written by hand because an exported generator must load with torch, numpy and pillow only (medgan
issue 25); medgan writes the file with the safetensors library and its tests check this reader
against safetensors' own. The format (github.com/huggingface/safetensors): 8 bytes little-endian
header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
{...}}, then the tensors' bytes. Nothing in it is executed; every offset is checked.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}
MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    pass


def _header(data: bytes, path) -> tuple[dict, int]:
    if len(data) < 8:
        raise SafetensorsError(f"{path}: too short for a safetensors file")
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(MAX_HEADER, len(data) - 8):
        raise SafetensorsError(f"{path}: header length {size} does not fit the file — not safetensors, or damaged")
    try:
        header = json.loads(data[8:8 + size])
    except ValueError:
        raise SafetensorsError(f"{path}: its header is not JSON — not safetensors, or damaged") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: its header is not a mapping")
    return header, 8 + size


def load_file(path) -> dict[str, torch.Tensor]:
    """{name: tensor} of a safetensors file (CPU, each tensor its own copy)."""
    data = Path(path).read_bytes()
    header, start = _header(data, path)
    body = len(data) - start
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = DTYPES[info["dtype"]]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{path}: tensor '{name}' has no valid dtype/shape/data_offsets "
                                   f"(supported dtypes: {', '.join(DTYPES)})") from None
        count = 1
        for d in shape:
            count *= d
        if not 0 <= begin <= end <= body or end - begin != count * torch.empty((), dtype=dtype).element_size():
            raise SafetensorsError(f"{path}: tensor '{name}' points outside the file or has the wrong length")
        raw = bytearray(data[start + begin:start + end])  # a writable copy: torch.frombuffer shares memory
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(shape)
    return tensors
