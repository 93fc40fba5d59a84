"""The images of a DICOM series (its files, or the frames of one enhanced file) as 3-D volumes.

A series is not always one stack of slices: dynamic, perfusion, fMRI, multi-echo and
diffusion acquisitions hold several images at every slice position, one per time point
(or echo, or b-value and direction). Stacking those as neighbouring slices would give a
2.5-D network another time point as spatial context. So the images are grouped by their
position along the slice normal, and the images that share a position are told apart by
the first attribute that distinguishes them at every position (:data:`TEMPORAL_KEYS`,
most specific first). The result is a :class:`Grouping`: a ``(positions, volumes)`` table
of image indices, which gathers the images into ``(slices, rows, columns[, volumes])``
voxels (volumes along the last axis, as 4-D NIfTI) and scatters processed voxels back to
one array per image, so every output file keeps its own tags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

POSITION_TOLERANCE_MM = 0.01  # positions closer than this along the normal are one slice position

# (name in the report, functional-group sequence (enhanced DICOM) or None, keywords):
# an image's value for a key is the tuple of its keywords' values.
TEMPORAL_KEYS: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("TemporalPositionIdentifier", None, ("TemporalPositionIdentifier",)),
    ("TemporalPositionIndex", "FrameContentSequence", ("TemporalPositionIndex",)),
    ("DiffusionBValue+Direction", "MRDiffusionSequence", ("DiffusionBValue", "DiffusionGradientOrientation")),
    ("DiffusionBValue", "MRDiffusionSequence", ("DiffusionBValue",)),
    ("EchoNumbers", None, ("EchoNumbers",)),
    ("EffectiveEchoTime", "MREchoSequence", ("EffectiveEchoTime",)),
    ("AcquisitionNumber", None, ("AcquisitionNumber",)),
    ("FrameAcquisitionNumber", "FrameContentSequence", ("FrameAcquisitionNumber",)),
    ("AcquisitionTime", None, ("AcquisitionTime",)),
    ("TriggerTime", None, ("TriggerTime",)),
)
ORDER_KEY = "order"  # the fallback: InstanceNumber of files, index of frames

Lookup = Callable[[str | None, str], Any]  # (sequence, keyword) -> the image's value or None


class GroupingError(ValueError):
    """The images of a series do not form complete volumes."""


@dataclass(frozen=True)
class Grouping:
    """``cells[s, t]``: the index of the image at slice position ``s`` of volume ``t``;
    ``by``: the key that told the volumes apart (None for one volume)."""

    cells: np.ndarray
    by: str | None = None

    @property
    def volumes(self) -> int:
        return int(self.cells.shape[1])

    def describe(self) -> dict[str, Any]:
        """What report.json says about this series."""
        return {"volumes": self.volumes, "slices_per_volume": int(self.cells.shape[0]), "by": self.by}

    def gather(self, images: np.ndarray) -> np.ndarray:
        """``(images, rows, columns)`` in image order -> ``(slices, rows, columns)``, or
        ``(slices, rows, columns, volumes)`` for several volumes."""
        voxels = np.moveaxis(images[self.cells], 1, -1)  # (S, T, R, C) -> (S, R, C, T)
        return voxels[..., 0] if self.volumes == 1 else voxels

    def scatter(self, voxels: np.ndarray) -> list[np.ndarray]:
        """The inverse of :meth:`gather` (rows and columns may have changed size)."""
        if self.volumes == 1:
            voxels = voxels[..., None]
        images: list[np.ndarray] = [np.empty(0)] * self.cells.size
        for (s, t), index in np.ndenumerate(self.cells):
            images[index] = voxels[s, :, :, t]
        return images


def group_images(distances: Sequence[float | None], lookups: Sequence[Lookup], orders: Sequence[float]) -> Grouping:
    """Group images by slice position (``distances`` along the slice normal, None where an
    image has no geometry) and, where several share one, by the first of
    :data:`TEMPORAL_KEYS` that separates them, else by ``orders``. Images without geometry
    are one volume in ``orders`` order."""
    count = len(distances)
    if any(d is None for d in distances):
        return Grouping(np.argsort(np.asarray(orders), kind="stable")[:, None])
    positions = _cluster([float(d) for d in distances])  # type: ignore[arg-type]
    members = [[i for i in range(count) if positions[i] == p] for p in range(max(positions) + 1)]
    sizes = {len(m) for m in members}
    if sizes == {1}:
        return Grouping(np.array([m[0] for m in members])[:, None])
    if len(sizes) > 1:
        raise GroupingError(f"slice positions hold different numbers of images ({', '.join(map(str, sorted(sizes)))}): "
                            f"an incomplete time series; give each complete volume its own folder")
    candidates = [(name, [_key(lookup, sequence, keywords) for lookup in lookups])
                  for name, sequence, keywords in TEMPORAL_KEYS]
    candidates.append((ORDER_KEY, [(float(o),) for o in orders]))
    for name, values in candidates:
        if all(v is not None for v in values) and all(len({values[i] for i in m}) == len(m) for m in members):
            cells = np.array([sorted(m, key=lambda i: values[i]) for m in members])
            return Grouping(cells, by=name)
    raise GroupingError(f"{len(members)} slice positions hold {sizes.pop()} images each and nothing tells them apart "
                        f"({', '.join(name for name, _, _ in TEMPORAL_KEYS)} or the instance order)")


def _cluster(distances: list[float]) -> list[int]:
    """Position index (0 = lowest) of each distance; gaps under the tolerance join positions."""
    order = np.argsort(distances, kind="stable")
    labels = [0] * len(distances)
    label = 0
    for previous, current in zip(order[:-1], order[1:]):
        if distances[current] - distances[previous] > POSITION_TOLERANCE_MM:
            label += 1
        labels[current] = label
    return labels


def _key(lookup: Lookup, sequence: str | None, keywords: tuple[str, ...]) -> tuple | None:
    values = []
    for keyword in keywords:
        value = lookup(sequence, keyword)
        if value is None or value == "":
            return None
        iterable = hasattr(value, "__iter__") and not isinstance(value, str)  # pydicom's MultiValue
        values.append(tuple(float(v) for v in value) if iterable else _comparable(value))
    return tuple(values)


def _comparable(value: Any) -> Any:
    """Numbers as floats (so "10" and 10 order alike), anything else as its text."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
