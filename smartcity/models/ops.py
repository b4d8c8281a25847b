"""Detector tensor ops shared by every backend: batched letterbox, box maths, class-aware NMS, decoding.

Everything runs on torch tensors (CPU or CUDA) without OpenCV or torchvision. Boxes are
`(x1, y1, x2, y2)` unless a name says `cxcywh`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from smartcity.core.errors import ValidationFailed
from smartcity.core.vision import Detection, letterbox_fit

NMS_BLOCK = 4096
"""Most candidates compared in one IoU matrix (a 4096 x 4096 float matrix is 64 MiB)."""


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How one frame was placed on the network input: `input = original * scale + pad`."""

    width: int
    height: int
    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int


def check_frames(frames: Sequence[np.ndarray]) -> None:
    for i, f in enumerate(frames):
        if not isinstance(f, np.ndarray) or f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            shape = getattr(f, "shape", None)
            dtype = getattr(f, "dtype", type(f).__name__)
            raise ValidationFailed(f"frames[{i}]: expected an HxWx3 uint8 RGB array, got {dtype} {shape}")
        if f.shape[0] < 1 or f.shape[1] < 1:
            raise ValidationFailed(f"frames[{i}]: empty frame {f.shape}")


def letterbox_params(width: int, height: int, size: tuple[int, int]) -> Letterbox:
    """Fit (width, height) inside size=(H, W) keeping the aspect ratio, centred."""
    out_h, out_w = size
    new_w, new_h = letterbox_fit(width, height, size)
    return Letterbox(width, height, new_w / width, new_h / height, (out_w - new_w) // 2, (out_h - new_h) // 2)


def rect_input_size(frames: Sequence[np.ndarray], size: tuple[int, int], stride: int = 32) -> tuple[int, int]:
    """The smallest (H, W) input, in multiples of `stride` and within `size`, that holds every
    frame letterboxed at the scale it gets in `size`: rectangular inference, as YOLOv5 does.
    A 4:3 camera at 416 runs on 416x320 instead of 416x416 (a quarter of the pixels were grey)."""
    out_h, out_w = size
    need_h = need_w = stride
    for f in frames:
        lb = letterbox_params(f.shape[1], f.shape[0], size)
        need_h = max(need_h, round(lb.height * lb.scale_y))
        need_w = max(need_w, round(lb.width * lb.scale_x))
    return (min(out_h, -(-need_h // stride) * stride), min(out_w, -(-need_w // stride) * stride))


def letterbox(
    frames: Sequence[np.ndarray],
    size: tuple[int, int],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    fill: int = 114,
) -> tuple[torch.Tensor, list[Letterbox]]:
    """Resize and pad RGB uint8 frames into one `[B, 3, H, W]` tensor scaled to [0, 1].

    Frames that share a shape are resized together in one interpolate call (antialiased
    bilinear, so that a 4K frame shrinks without aliasing). On CPU the resize runs on uint8,
    which is several times faster than on floats.
    """
    check_frames(frames)
    device = torch.device(device)
    out_h, out_w = size
    canvas = torch.full((len(frames), 3, out_h, out_w), fill, dtype=torch.uint8, device=device)
    boxes: list[Letterbox] = [letterbox_params(f.shape[1], f.shape[0], size) for f in frames]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, f in enumerate(frames):
        groups.setdefault((f.shape[0], f.shape[1]), []).append(i)
    for idx in groups.values():
        lb = boxes[idx[0]]
        new_w, new_h = round(lb.width * lb.scale_x), round(lb.height * lb.scale_y)
        stacked = np.stack([frames[i] for i in idx]) if len(idx) > 1 else frames[idx[0]][None]
        x = torch.from_numpy(np.ascontiguousarray(stacked)).to(device).permute(0, 3, 1, 2)
        if (new_h, new_w) != (lb.height, lb.width):
            if device.type == "cpu":
                x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
            else:  # CUDA interpolates floats only
                x = F.interpolate(
                    x.float(), size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False
                )
                x = x.round_().clamp_(0, 255).to(torch.uint8)
        index = torch.tensor(idx, device=device)
        canvas[index, :, lb.pad_y : lb.pad_y + new_h, lb.pad_x : lb.pad_x + new_w] = x
    return canvas.to(dtype).div_(255.0), boxes


def unletterbox(boxes: torch.Tensor, lb: Letterbox) -> torch.Tensor:
    """Map `[N, 4]` xyxy boxes from network input pixels back to the original frame, clipped."""
    out = torch.empty_like(boxes)
    out[:, 0::2] = ((boxes[:, 0::2] - lb.pad_x) / lb.scale_x).clamp_(0, lb.width)
    out[:, 1::2] = ((boxes[:, 1::2] - lb.pad_y) / lb.scale_y).clamp_(0, lb.height)
    return out


def cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    half = b[..., 2:4] / 2
    return torch.cat((b[..., 0:2] - half, b[..., 0:2] + half), -1)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU matrix `[len(a), len(b)]` of xyxy boxes; 0 where both areas are empty."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS: indices of kept boxes, highest score first (ties keep input order).

    Computed as Cluster-NMS: a fixed-point iteration on the upper-triangular IoU matrix that
    reaches exactly the greedy result in a handful of matrix ops instead of a Python loop.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes[order], boxes[order]).triu_(diagonal=1)
    keep = torch.ones(len(order), dtype=torch.bool, device=boxes.device)
    for _ in range(len(order)):
        # A box survives when no *surviving* higher-scored box overlaps it too much.
        new_keep = (iou * keep[:, None]).amax(0) <= iou_threshold
        if torch.equal(new_keep, keep):
            break
        keep = new_keep
    return order[keep]


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """NMS that only compares boxes of the same group (class, or image and class)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    # Shift each group to its own region of the plane so that groups never overlap.
    span = (boxes.max() - boxes.min()).clamp(min=0) + 1
    shifted = boxes - boxes.min() + (groups.to(boxes.dtype) * span)[:, None]
    return nms(shifted, scores, iou_threshold)


def postprocess(
    boxes_cxcywh: torch.Tensor,
    scores: torch.Tensor,
    letterboxes: Sequence[Letterbox],
    names: Sequence[str],
    *,
    conf_threshold: float,
    nms_iou: float,
    max_detections: int,
    class_ids: torch.Tensor | None = None,
    class_groups: torch.Tensor | None = None,
) -> list[list[Detection]]:
    """Turn `[B, N, 4]` boxes and `[B, N, C]` class scores into detections in original pixels.

    Each box takes its best class among `class_ids` (all when None); boxes under
    `conf_threshold` are dropped, then class-aware NMS runs over the whole batch at once
    (image and class form the NMS group) and each image keeps its `max_detections` best.
    `class_groups` maps each class index to its NMS group (classes sharing a group suppress each
    other: car, truck and bus on one vehicle); None keeps one group per class.
    """
    boxes_cxcywh, scores = boxes_cxcywh.float(), scores.float()
    num_classes = scores.shape[-1]
    if class_ids is not None:
        scores = scores[..., class_ids]
    best, cls = scores.max(-1)
    if class_ids is not None:
        cls = class_ids[cls]
    img, anchor = torch.nonzero(best > conf_threshold, as_tuple=True)
    cand_scores = best[img, anchor]
    cand_boxes = cxcywh_to_xyxy(boxes_cxcywh[img, anchor])
    cand_cls = cls[img, anchor]
    groups = img * num_classes + (class_groups[cand_cls] if class_groups is not None else cand_cls)
    if len(img) <= NMS_BLOCK:
        keep = batched_nms(cand_boxes, cand_scores, groups, nms_iou)
    else:  # bound the IoU matrix: one image at a time, its NMS_BLOCK best candidates
        parts = []
        for b in range(len(letterboxes)):
            sel = torch.nonzero(img == b).flatten()
            if len(sel) > NMS_BLOCK:
                sel = sel[torch.topk(cand_scores[sel], NMS_BLOCK).indices]
            parts.append(sel[batched_nms(cand_boxes[sel], cand_scores[sel], groups[sel], nms_iou)])
        keep = torch.cat(parts)
    out: list[list[Detection]] = [[] for _ in letterboxes]
    kept_img = img[keep]
    for b, lb in enumerate(letterboxes):
        sel = keep[kept_img == b][:max_detections]
        if len(sel) == 0:
            continue
        xyxy = unletterbox(cand_boxes[sel], lb).tolist()
        for box, c, s in zip(xyxy, cand_cls[sel].tolist(), cand_scores[sel].tolist()):
            out[b].append(Detection((box[0], box[1], box[2], box[3]), names[c], s))
    return out
