"""The label encoding of a dataset's masks, from what the dataset declares (not from the values
that happen to occur in a training split).

prepare writes masks as 0 background, 1 organ, 2 lesion for `volumes` (organ_labels and
lesion_labels of the raw label maps select what becomes 1 and 2) and 0/1 (1 = lesion) for
`paired_folders`. Networks see labels scaled to [-1, 1] by the largest written value; sample
writes mask PNGs scaled to 0..255 by the same value so that they can be looked at."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Encoding:
    max_value: int       # the largest value a written mask may hold
    lesion_value: int    # the value that marks the lesion
    organ_values: tuple  # values that count as organ tissue (lesion included)

    def as_dict(self) -> dict:
        return {"max_value": self.max_value, "lesion_value": self.lesion_value,
                "organ_values": list(self.organ_values)}

    def to_model_range(self, masks_uint8):
        """Label values 0..max_value -> [-1, 1], the generator's input range."""
        return masks_uint8.float().mul(2.0 / self.max_value).sub_(1.0)

    def to_view(self, masks_uint8):
        import torch  # config imports this module; keep loading params torch-free

        return (masks_uint8.float() * (255.0 / self.max_value)).round().to(torch.uint8)

    def view_value(self, label: int) -> int:
        return int(round(label * 255.0 / self.max_value))

    def lesion_in_view(self, view: np.ndarray) -> np.ndarray:
        """Lesion pixels of a mask PNG written by `to_view`."""
        return view == self.view_value(self.lesion_value)

    def organ_in_view(self, view: np.ndarray) -> np.ndarray:
        return np.isin(view, [self.view_value(v) for v in self.organ_values])


def encoding_of(dataset: dict) -> Encoding:
    """The encoding prepare writes for this dataset spec (params["datasets"][name])."""
    if dataset.get("kind") == "paired_folders":
        return Encoding(1, 1, (1,))
    lesion = bool(dataset.get("lesion_labels", [2]))
    return Encoding(2 if lesion else 1, 2 if lesion else -1, (1, 2) if lesion else (1,))


def encoding_from_dict(values: dict) -> Encoding:
    return Encoding(int(values["max_value"]), int(values["lesion_value"]), tuple(values["organ_values"]))
