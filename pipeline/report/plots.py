"""The report's figures, drawn with matplotlib (Agg) and embedded as base64 PNG.

Every figure uses the same colour per emotion (EMOTION_COLORS) and the EMOTIONS order, so a reader who
learns the legend once can read every chart.
"""
from __future__ import annotations

import base64
import io
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # no display on workers or CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, PercentFormatter  # noqa: E402

from schemas import EMOTIONS  # noqa: E402

# Colour-blind-aware, fixed per emotion everywhere in the report (charts, chips, table bars).
EMOTION_COLORS: dict[str, str] = {
    "anger": "#d62728",
    "disgust": "#6b8e23",
    "fear": "#7b3fa0",
    "joy": "#f2b701",
    "neutral": "#9e9e9e",
    "sadness": "#1f77b4",
    "surprise": "#ff7f0e",
}
assert tuple(EMOTION_COLORS) == EMOTIONS

DPI = 110

GUESSING_LABEL = "guessing (no modality backs the label)"
UNKNOWN_LABEL = "no evidence recorded"
DAMAGED_LABEL = "damaged media (picture or sound not as made)"
# Stretch kinds -> how the arc draws them: grey hatch over the probabilities where the model is guessing, red
# cross-hatch where the film's own picture or sound is damaged (the clips table's `damaged`).
_STRETCH_STYLE = {
    "guessing": dict(facecolor="#55595f", alpha=0.38, hatch="////", edgecolor="#2b2e33", label=GUESSING_LABEL),
    "unknown": dict(facecolor="#b8bcc4", alpha=0.30, hatch="..", edgecolor="#6a6f78", label=UNKNOWN_LABEL),
    "damaged": dict(facecolor="#c0392b", alpha=0.30, hatch="xx", edgecolor="#8e2a20", label=DAMAGED_LABEL),
}


def fmt_time(seconds: float, _pos=None) -> str:
    """h:mm:ss for long films, m:ss for short ones."""
    s = int(round(max(seconds, 0.0)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def to_png_b64(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over clips (rows), so long films read as a trend, not noise."""
    if window <= 1 or len(values) < 3:
        return values
    kernel = np.ones(window) / window
    pad = window // 2
    padded = np.pad(values, ((pad, window - 1 - pad), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(values.shape[1])], axis=1)


def smoothing_window(n_clips: int) -> int:
    """About 60 points across the film, never fewer than 1 clip per point."""
    return max(1, n_clips // 60)


def guess_stretches(start_s: Sequence[float], end_s: Sequence[float],
                    grounded: Sequence[Optional[bool]]) -> list[tuple[float, float, str]]:
    """The time spans where the model is guessing: runs of consecutive clips (in time order) that are not
    grounded, merged into (start_s, end_s, kind) stretches; kind is "guessing" (grounded false) or "unknown"
    (grounded null: the run recorded no evidence). A grounded clip ends a stretch."""
    return _stretches(start_s, end_s, [None if g is True else "unknown" if g is None else "guessing" for g in grounded])


def damaged_stretches(start_s: Sequence[float], end_s: Sequence[float],
                      damaged: Sequence[bool]) -> list[tuple[float, float, str]]:
    """The time spans of runs of consecutive clips whose picture or sound is damaged, as guess_stretches."""
    return _stretches(start_s, end_s, ["damaged" if d else None for d in damaged])


def _stretches(start_s: Sequence[float], end_s: Sequence[float],
               kinds: Sequence[Optional[str]]) -> list[tuple[float, float, str]]:
    """Runs of consecutive clips (in time order) of the same kind as (start_s, end_s, kind); None ends a run."""
    order = np.argsort(np.asarray(start_s, dtype=float), kind="stable")
    out: list[tuple[float, float, Optional[str]]] = []
    for i in order:
        kind, s, e = kinds[i], float(start_s[i]), float(end_s[i])
        if kind is not None and out and out[-1][2] == kind:
            out[-1] = (out[-1][0], max(out[-1][1], e), kind)
        else:
            out.append((s, max(e, s), kind))
    return [x for x in out if x[2] is not None]


def _bands(axis, spans: Sequence[tuple[float, float]], **style) -> None:
    """Full-height bands over the x spans (start, end), as axvspan draws each, in one collection: before 2026-12-06
    one axvspan each, which made a 32,000-clip film's report take 68 s (16 s now). The axis's y range must be 0..1."""
    if spans:
        axis.broken_barh([(s, e - s) for s, e in spans], (0.0, 1.0), linewidth=0.0, **style)


def emotion_arc(start_s: np.ndarray, end_s: np.ndarray, probs: np.ndarray, emotions: Sequence[Optional[str]],
                duration_s: Optional[float] = None, title: str = "",
                grounded: Optional[Sequence[Optional[bool]]] = None,
                damaged: Optional[Sequence[bool]] = None) -> str:
    """emotion_arc_figure as base64 PNG."""
    return to_png_b64(emotion_arc_figure(start_s, end_s, probs, emotions, duration_s, title, grounded, damaged))


def emotion_arc_figure(start_s: np.ndarray, end_s: np.ndarray, probs: np.ndarray, emotions: Sequence[Optional[str]],
                       duration_s: Optional[float] = None, title: str = "",
                       grounded: Optional[Sequence[Optional[bool]]] = None,
                       damaged: Optional[Sequence[bool]] = None) -> Figure:
    """The film's emotion arc: stacked probabilities over time (top), the predicted emotion of every clip at
    its real extent (middle strip), and the share of clips per emotion (right). With `grounded` (per clip:
    True, False, or None when no evidence was recorded) the stretches where the model is guessing are covered
    by a grey hatched band (gid "guessing"; "unknown" for no evidence) with a legend entry; with `damaged` (per
    clip: its picture or sound is damaged) those stretches by a red cross-hatched one (gid "damaged")."""
    fig = plt.figure(figsize=(11.0, 3.3))
    grid = fig.add_gridspec(2, 2, width_ratios=[4.6, 1.0], height_ratios=[5.0, 0.8], hspace=0.08, wspace=0.22)
    ax, strip, dist = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[:, 1])
    end = float(duration_s or (end_s.max() if len(end_s) else 1.0)) or 1.0
    colors = [EMOTION_COLORS[e] for e in EMOTIONS]
    if len(probs):
        smooth = _smooth(probs, smoothing_window(len(probs)))
        # Each clip holds its probabilities over its own span; gaps between clips are bridged linearly.
        x = np.stack([start_s, np.maximum(end_s, start_s + 1e-3)], axis=1).reshape(-1)
        x = np.maximum.accumulate(x)  # overlapping clips must not fold the time axis back
        ax.stackplot(x, np.repeat(smooth, 2, axis=0).T, colors=colors, linewidth=0, alpha=0.92)
        ax.set_xlim(0, end)
    else:
        ax.text(0.5, 0.5, "no scored clips", ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.tick_params(labelbottom=False)
    ax.margins(x=0)
    if title:
        ax.set_title(title, loc="left", fontsize=11)
    if (grounded is not None or damaged is not None) and len(probs):
        kinds = []
        stretches = guess_stretches(start_s, end_s, grounded) if grounded is not None else []
        stretches += damaged_stretches(start_s, end_s, damaged) if damaged is not None else []
        for kind in dict.fromkeys(k for _, _, k in stretches):
            style = dict(_STRETCH_STYLE[kind])
            style.pop("label")
            # Thin stretches stay visible: at least 1/400 of the film wide.
            spans = [(s, max(e, s + end / 400.0)) for s, e, k in stretches if k == kind]
            for axis in (ax, strip):
                _bands(axis, spans, zorder=3, gid=kind, **style)
            kinds.append(kind)
        handles = [Patch(**_STRETCH_STYLE[k]) for k in ("guessing", "unknown", "damaged") if k in kinds]
        if handles:
            ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(handles),
                      frameon=False, fontsize=8, borderaxespad=0.1)
    for emo in EMOTIONS:
        spans = [(s, max(e, s + end / 2000.0)) for s, e, em in zip(start_s, end_s, emotions) if em == emo]
        _bands(strip, spans, facecolor=EMOTION_COLORS[emo], edgecolor=EMOTION_COLORS[emo])
    strip.set_xlim(0, end)
    strip.set_ylim(0, 1)
    strip.set_yticks([])
    strip.set_ylabel("clip", rotation=0, ha="right", va="center")
    strip.xaxis.set_major_formatter(FuncFormatter(fmt_time))
    strip.set_xlabel("film time")
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)

    counts = np.array([sum(1 for e in emotions if e == name) for name in EMOTIONS], dtype=float)
    shares = counts / counts.sum() if counts.sum() else counts
    y = np.arange(len(EMOTIONS))
    dist.barh(y, shares, color=colors)
    dist.set_yticks(y, EMOTIONS)
    dist.invert_yaxis()
    dist.set_xlim(0, max(0.05, float(shares.max()) * 1.35) if counts.sum() else 1)
    dist.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    dist.set_title("share of clips", fontsize=10)
    for yi, (share, n) in enumerate(zip(shares, counts)):
        if n:
            dist.text(share, yi, f" {int(n)}", va="center", fontsize=8, color="#333")
    for spine in ("top", "right"):
        dist.spines[spine].set_visible(False)
    return fig


def catalogue_distribution(film_ids: Sequence[str], shares: np.ndarray, n_clips: Sequence[int],
                           grounded: Optional[Sequence[Optional[float]]] = None,
                           solid: Optional[np.ndarray] = None) -> str:
    """Emotion distribution per film side by side: one 100% bar per film, films as rows; each row's label has
    its clip count and, when given, its grounded share (None: no evidence recorded). `solid`: of each share, the part
    drawn solid (grounded clips); the rest is drawn hatched and pale (guesses)."""
    n = len(film_ids)
    fig, ax = plt.subplots(figsize=(11.0, 0.9 + 0.28 * max(n, 1)))
    y = np.arange(n)
    left = np.zeros(n)
    solid = shares if solid is None else np.minimum(solid, shares)
    for j, emo in enumerate(EMOTIONS):
        ax.barh(y, solid[:, j], left=left, color=EMOTION_COLORS[emo], label=emo, height=0.78, linewidth=0)
        left += solid[:, j]
        guessed = shares[:, j] - solid[:, j]
        if guessed.max() > 1e-9:
            ax.barh(y, guessed, left=left, color=EMOTION_COLORS[emo], alpha=0.35, hatch="///", edgecolor="white",
                    height=0.78, linewidth=0)
            left += guessed
    if grounded is None:
        labels = [f"{fid}  ({c} clips)" for fid, c in zip(film_ids, n_clips)]
    else:
        labels = [f"{fid}  ({c} clips, " + ("no evidence" if g is None else f"{100 * g:.0f}% grounded") + ")"
                  for fid, c, g in zip(film_ids, n_clips, grounded)]
    ax.set_yticks(y, labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.xaxis.tick_top()
    ax.set_xlabel("share of clips per predicted emotion")
    ax.xaxis.set_label_position("top")
    for spine in ("right", "bottom"):
        ax.spines[spine].set_visible(False)
    handles, labels_ = ax.get_legend_handles_labels()
    if (shares - solid).max() > 1e-9:
        from matplotlib.patches import Patch
        handles.append(Patch(facecolor="#9aa3ad", alpha=0.35, hatch="///", edgecolor="white"))
        labels_.append("hatched: guess")
    ax.legend(handles, labels_, ncol=len(labels_), loc="upper center", bbox_to_anchor=(0.5, -0.02 if n > 3 else -0.08),
              frameon=False, fontsize=9)
    return to_png_b64(fig)


def attention_scale(weights: np.ndarray) -> tuple[float, float]:
    """A panel's colour scale: its own min..max, so near-uniform attention still shows where it leans; 0..1 where
    every weight is the same (one face or one prosody token takes all of each row's attention), which min..max drew
    black, as if the modality got none."""
    lo, hi = float(weights.min()), float(weights.max())
    return (0.0, 1.0) if hi - lo < 1e-6 else (lo, hi)


def attention_figure(attention: dict[str, np.ndarray], gates: dict[str, float], row_labels: Sequence[str],
                     column_labels: dict[str, Sequence[str]], title: str = "") -> str:
    """The paper's attention map: one heatmap per modality (text tokens as rows, that modality's tokens as
    columns, heads averaged), and a bar of the modality gates."""
    shown = [m for m, a in attention.items() if a.size and a.shape[1] > 0]
    ncols = len(shown) + 1
    widths = [max(2.2, min(7.0, 0.22 * attention[m].shape[1] + 1.5)) for m in shown] + [1.8]
    height = max(3.0, min(12.0, 0.22 * len(row_labels) + 1.6))
    fig, axes = plt.subplots(1, ncols, figsize=(sum(widths) + 1.2, height),
                             gridspec_kw={"width_ratios": widths, "wspace": 0.55}, squeeze=False)
    axes = axes[0]
    for k, m in enumerate(shown):
        ax = axes[k]
        weights = attention[m]
        vmin, vmax = attention_scale(weights)
        im = ax.imshow(weights, aspect="auto", cmap="magma", vmin=vmin, vmax=vmax)
        ax.set_title(f"{m} (gate {gates.get(m, 0.0):.2f})", fontsize=10)
        cols = list(column_labels.get(m, []))
        if cols and len(cols) == weights.shape[1] and len(cols) <= 60:
            ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7)
        else:
            ax.set_xlabel(f"{weights.shape[1]} {m} tokens")
        if k == 0 and len(row_labels) == weights.shape[0]:
            ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
        else:
            ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
    gate_ax = axes[-1]
    names = list(gates)
    gate_ax.bar(range(len(names)), [gates[n] for n in names], color=["#444", "#1f77b4", "#ff7f0e", "#2ca02c"][:len(names)])
    gate_ax.set_xticks(range(len(names)), names, rotation=45, fontsize=8)
    gate_ax.set_ylim(0, 1)
    gate_ax.set_title("modality gates", fontsize=10)
    for spine in ("top", "right"):
        gate_ax.spines[spine].set_visible(False)
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    return to_png_b64(fig)
