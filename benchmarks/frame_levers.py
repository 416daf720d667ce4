"""What the speed levers change in the labels of real footage: each setting against the full-cost one.

    python -m benchmarks.frame_levers [--json out.json]

Runs `pipeline.run` (DirectRunner, `--transcribe never`, every modality) over the real media in ../shared/data
(the Sintel trailer with its subtitles, the 11 GRID talking-face clips, Big Buck Bunny, and the odd folder's
scene-change and video-only films) once per setting, and compares each clip's label with the full-cost run:
four frames per clip through torch's ViT and text encoder in fp32, every frame decoded with the codec's
deblocking filter (`--frame_every_s 0 --vision_runtime torch --text_runtime torch --precision fp32
--decode_all_frames --decode_deblock`); each later setting adds one lever to the one before it, up to the
defaults. The clips are the same in every run (the segmentation does not depend on these options). Per setting:
label agreement, mean absolute change of the confidence, agreement of the `grounded` flag, and the frames the ViT
read. Dev-set quality (photos, faces, speech, text, labelled clips) is measured by pipeline.evaluate and
benchmarks.labelled_clips.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "data" / "media"
FULL_PRECISION = ["--precision", "fp32", "--text_runtime", "torch"]
SETTINGS = {
    "full cost: 4 frames, every frame decoded and deblocked, torch ViT and text encoder in fp32":
        ["--frame_every_s", "0", "--vision_runtime", "torch", "--decode_all_frames", "--decode_deblock",
         *FULL_PRECISION],
    "4 frames, non-reference frames and deblocking skipped, torch in fp32":
        ["--frame_every_s", "0", "--vision_runtime", "torch", *FULL_PRECISION],
    "4 frames, torch ViT and text encoder in bf16": ["--frame_every_s", "0", "--vision_runtime", "torch",
                                                     "--text_runtime", "torch"],
    "4 frames, ViT and text encoder on OpenVINO (bf16)": ["--frame_every_s", "0"],
    "a frame per second (default)": ["--frame_every_s", "1"],
    "a frame per 2 s": ["--frame_every_s", "2"],
}


def films(folder: Path) -> Path:
    """A folder of links to the real films (and the trailer's subtitles)."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [MEDIA / "sintel" / "sintel_trailer.mp4", MEDIA / "sintel" / "sintel_trailer.en.vtt",
               MEDIA / "odd" / "bigbuckbunny.mp4", MEDIA / "odd" / "scene-change.mov", MEDIA / "odd" / "video-only.mov",
               *sorted((MEDIA / "grid").glob("*.mpg"))]
    for src in sources:
        if src.exists() and not (folder / src.name).exists():
            (folder / src.name).symlink_to(src)
    return folder


def run_setting(inputs: Path, extra: list[str], out: Path) -> dict:
    import pyarrow.parquet as pq
    from pipeline import run as run_mod
    argv = ["--input", str(inputs / "*"), "--output", str(out), "--transcribe", "never"] + extra
    run_mod.run(argv, save_main_session=False)
    rows = []
    for p in sorted((out / "clips").glob("*.parquet")):
        rows += pq.read_table(p, columns=["film_id", "clip_index", "emotion", "confidence", "grounded",
                                          "n_frames"]).to_pylist()
    return {(r["film_id"], r["clip_index"]): r for r in rows}


def compare(base: dict, other: dict) -> dict:
    keys = [k for k in base if k in other and base[k]["emotion"] is not None and other[k]["emotion"] is not None]
    n = len(keys)
    return {"clips": n,
            "label_agreement": sum(base[k]["emotion"] == other[k]["emotion"] for k in keys) / max(n, 1),
            "mean_abs_confidence_change": sum(abs(base[k]["confidence"] - other[k]["confidence"])
                                              for k in keys) / max(n, 1),
            "grounded_agreement": sum(base[k]["grounded"] == other[k]["grounded"] for k in keys) / max(n, 1),
            "frames_sampled": sum(other[k]["n_frames"] for k in keys)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="frame-levers-"))
    inputs = films(work / "films")
    results, base = {}, None
    for name, extra in SETTINGS.items():
        rows = run_setting(inputs, extra, work / f"out{len(results)}")
        base = base or rows
        results[name] = compare(base, rows)
        print(name, results[name], flush=True)
    print("\n| setting | clips | label agreement with full cost | mean abs. confidence change | grounded agreement "
          "| frames sampled |\n|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['clips']} | {r['label_agreement']:.3f} | {r['mean_abs_confidence_change']:.3f} | "
              f"{r['grounded_agreement']:.3f} | {r['frames_sampled']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
