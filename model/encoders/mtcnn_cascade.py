"""MTCNN's three-stage cascade over a batch of frames (networks and box helpers: `mtcnn_nets`).

Same stages, thresholds and boxes as `facenet_pytorch.models.utils.detect_face.detect_face`, two costs removed:
- R-Net and O-Net candidates are cut and resampled all at once from a summed-area table of each frame. facenet-pytorch
  resamples each candidate with its own `interpolate(mode="area")` call, a Python loop that took a quarter of the
  detector's time on busy frames (hundreds of candidates per frame).
- P-Net runs channels-last: its 2x2 max-pool, most of P-Net's time in NCHW on CPU, is 2-3x faster that way.
- R-Net and O-Net take their candidates in cache-sized chunks (STAGE_CHUNK).
- The image pyramid comes from the same summed-area table (one per batch, OpenCV's `integral` on CPU): area
  resampling is a difference of four table entries per pixel, exactly torch's bins (`interpolate(mode="area")`
  to float rounding, 2e-5 of a pixel value). 8 noise frames at 480x270, 1 thread: the table 23-27 -> 1.0-1.4 ms,
  the pyramid 60-63 -> 26 ms.
A candidate box that lies wholly outside its frame is dropped (facenet-pytorch would misalign its scores).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from .mtcnn_nets import batched_nms, batched_nms_min, clip_boxes, proposals, regress, square

# R-Net (24 px) and O-Net (48 px) candidates go through their network this many at a time: a whole batch's
# candidates at once (over a thousand on textured frames) spill the CPU caches; in these chunks R-Net runs about
# 2x and O-Net about 2.4x faster per candidate (2 threads, this project's EPYC), with the same outputs.
STAGE_CHUNK = {24: 256, 48: 64}


def summed_area_table(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W, C] -> int32 [B, H + 1, W + 1, C], table[:, y, x] = sum of frames[:, :y, :x] (exact: a
    640x640 frame sums to at most 1.1e8 < 2^31)."""
    b, h, w, c = frames.shape
    if frames.device.type == "cpu" and b:  # OpenCV's integral image: the same integers, 20x faster than cumsum
        return torch.from_numpy(np.stack([cv2.integral(f).reshape(h + 1, w + 1, c) for f in frames.numpy()]))
    table = torch.zeros(b, h + 1, w + 1, c, dtype=torch.int32, device=frames.device)
    table[:, 1:, 1:] = frames.int().cumsum(1).cumsum(2)
    return table


def _area_bins(lo, n, size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive average pooling's bin edges for `size` outputs over n inputs starting at lo:
    floor(i * n / size) .. ceil((i + 1) * n / size). lo and n: ints or [N] index arrays (-> [N, size])."""
    i = torch.arange(size, device=device)
    if not isinstance(lo, int):
        lo, n = (torch.as_tensor(lo, dtype=torch.long, device=device)[:, None],
                 torch.as_tensor(n, dtype=torch.long, device=device)[:, None])
        i = i[None]
    return lo + (i * n) // size, lo - ((-(i + 1) * n) // size)


def area_resize(table: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The frames behind `table` (summed_area_table) resampled to height x width by area averaging, as
    interpolate(mode="area") bins them: float32 [B, height, width, C] (NHWC)."""
    h, w = table.shape[1] - 1, table.shape[2] - 1
    r0, r1 = _area_bins(0, h, height, table.device)
    q0, q1 = _area_bins(0, w, width, table.device)
    rows = table.index_select(1, r1) - table.index_select(1, r0)  # [B, height, W + 1, C]: sums over row bins
    sums = rows.index_select(2, q1) - rows.index_select(2, q0)
    area = ((r1 - r0)[:, None] * (q1 - q0)[None]).float()
    return sums.float() / area[None, :, :, None]


def area_crops(table: torch.Tensor, image_inds: torch.Tensor, y0, y1, x0, x1, size: int) -> torch.Tensor:
    """Crops frames[i, y0:y1, x0:x1] (one per candidate) resampled to size x size by area averaging, exactly
    torch's adaptive average pooling bins (what interpolate(mode="area") does), for every candidate in one pass.
    table: summed_area_table(frames); index arrays [N] int (y1 > y0, x1 > x0).
    Returns [N, C, size, size] float32 (channels-last in memory)."""
    b, h1, w1, c = table.shape
    r0, r1 = _area_bins(y0, y1 - y0, size, table.device)  # [N, S]
    q0, q1 = _area_bins(x0, x1 - x0, size, table.device)
    # a pixel position's row in table.view(-1, C): (frame * (H + 1) + y) * (W + 1) + x
    frame = image_inds.long()[:, None] * h1
    rows0, rows1 = ((frame + r0) * w1)[:, :, None], ((frame + r1) * w1)[:, :, None]  # [N, S, 1]
    q0, q1 = q0[:, None, :], q1[:, None, :]  # [N, 1, S]
    flat = table.view(-1, c)
    sums = flat[rows1 + q1] - flat[rows0 + q1] - flat[rows1 + q0] + flat[rows0 + q0]  # [N, S, S, C]
    area = ((r1 - r0)[:, :, None] * (q1 - q0)[:, 0, None, :]).float()  # [N, S, S]
    return (sums.float() / area[..., None]).permute(0, 3, 1, 2)


def stage(net, table: torch.Tensor, boxes: torch.Tensor, image_inds: torch.Tensor, size: int):
    """R-Net (size 24) or O-Net (size 48) on candidate boxes [N, >=4] (x1 y1 x2 y2 ...) of the frames behind
    `table` (summed_area_table), STAGE_CHUNK at a time. Returns (the boxes and image_inds kept: a box wholly
    outside its frame is dropped, (the network's outputs for them))."""
    h, w = table.shape[1] - 1, table.shape[2] - 1
    y, ey, x, ex = clip_boxes(boxes, w, h)
    ok = (ey > y - 1) & (ex > x - 1)
    keep = torch.from_numpy(ok).to(boxes.device)
    boxes, image_inds = boxes[keep], image_inds[keep]
    y, ey, x, ex = y[ok] - 1, ey[ok], x[ok] - 1, ex[ok]
    outs = []
    for at in range(0, len(boxes), STAGE_CHUNK[size]):
        part = slice(at, at + STAGE_CHUNK[size])
        crops = area_crops(table, image_inds[part], y[part], ey[part], x[part], ex[part], size)
        outs.append(net(((crops - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)))
    return boxes, image_inds, tuple(torch.cat(o) for o in zip(*outs)) if outs else net(
        torch.zeros(0, 3, size, size).contiguous(memory_format=torch.channels_last))


def detect(mtcnn, frames: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """frames uint8 [B, H, W, 3] -> per frame (boxes [K, 4] x1 y1 x2 y2, scores [K]), largest box first, as
    facenet-pytorch's `MTCNN.detect(frames)` gives them (a frame with no face: empty arrays).
    mtcnn: a `mtcnn_nets.Cascade`."""
    threshold, factor = mtcnn.thresholds, mtcnn.factor
    with torch.inference_mode():
        pixels = torch.as_tensor(np.ascontiguousarray(frames), device=mtcnn.device)
        batch, (h, w) = len(pixels), pixels.shape[1:3]
        m = 12.0 / mtcnn.min_face_size
        scales, minl = [], min(h, w) * m
        while minl >= 12:
            scales.append(m * factor ** len(scales))
            minl *= factor
        if not scales:  # the frame is smaller than the smallest face searched for
            return [np.zeros((0, 4), np.float32)] * batch, [np.zeros(0, np.float32)] * batch

        table = summed_area_table(pixels)  # the pyramid's levels and every R-Net and O-Net crop come from it
        boxes, image_inds, offset, picks = [], [], 0, []
        for scale in scales:
            x = area_resize(table, int(h * scale + 1), int(w * scale + 1))
            reg, probs = mtcnn.pnet(((x - 127.5) * 0.0078125).permute(0, 3, 1, 2))  # NHWC memory: channels-last
            b, inds = proposals(reg.contiguous(), probs[:, 1].contiguous(), scale, threshold[0])
            picks.append(batched_nms(b[:, :4], b[:, 4], inds, 0.5) + offset)
            offset += len(b)
            boxes.append(b)
            image_inds.append(inds)
        boxes, image_inds = torch.cat(boxes), torch.cat(image_inds)
        picks = torch.cat(picks)
        boxes, image_inds = boxes[picks], image_inds[picks]
        pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
        boxes, image_inds = boxes[pick], image_inds[pick]
        regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes = torch.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                             boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]], 1)
        boxes = square(boxes)

        if len(boxes):
            boxes, image_inds, (reg, probs) = stage(mtcnn.rnet, table, boxes, image_inds, 24)
            score = probs[:, 1]
            keep = score > threshold[1]
            boxes = torch.cat([boxes[keep, :4], score[keep, None]], 1)
            image_inds, reg = image_inds[keep], reg[keep]
            pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
            boxes = square(regress(boxes[pick], reg[pick]))
            image_inds = image_inds[pick]
        if len(boxes):
            boxes, image_inds, (reg, _, probs) = stage(mtcnn.onet, table, boxes, image_inds, 48)
            score = probs[:, 1]
            keep = score > threshold[2]
            boxes = regress(torch.cat([boxes[keep, :4], score[keep, None]], 1), reg[keep])
            image_inds = image_inds[keep]
            pick = batched_nms_min(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
            boxes, image_inds = boxes[pick], image_inds[pick]
    boxes, image_inds = boxes.cpu().numpy(), image_inds.cpu().numpy()
    out_boxes, out_scores = [], []
    for i in range(batch):
        b = boxes[image_inds == i] if len(boxes) else np.zeros((0, 5), np.float32)
        b = b[np.argsort((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), kind="stable")[::-1]]
        out_boxes.append(b[:, :4])
        out_scores.append(b[:, 4])
    return out_boxes, out_scores


def score_boxes(mtcnn, frame: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """O-Net alone on given candidate boxes of one frame: uint8 [H, W, 3], boxes [K, 4] x1 y1 x2 y2 -> (the boxes
    as O-Net's regression moves them, O-Net's face scores), for the candidates that overlap the frame. For
    candidates no pyramid proposes: a face that fills the frame is larger than P-Net's largest scale sees."""
    with torch.inference_mode():
        pixels = torch.as_tensor(np.ascontiguousarray(frame), device=mtcnn.device)[None]
        cand = torch.as_tensor(np.asarray(boxes, np.float32), device=mtcnn.device).reshape(-1, 4)
        cand, _, (reg, _, probs) = stage(mtcnn.onet, summed_area_table(pixels), cand,
                                         torch.zeros(len(cand), dtype=torch.long, device=cand.device), 48)
        moved = regress(cand.clone(), reg)
    return moved[:, :4].cpu().numpy(), probs[:, 1].cpu().numpy()
