"""Shared by the scoring tests: a head checkpoint that fits the real encoders, and a tiny PyAV-made film."""
from __future__ import annotations

from pathlib import Path

import torch

from testing.films import FilmSpec, make_textured_film
from model.checkpoints import DEFAULT_HEAD, save_head

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SINTEL = DATA / "media" / "sintel" / "sintel_trailer.mp4"


def encoder_dims() -> dict[str, int]:
    from model.encoders import EncoderSpec, create_encoders
    from model.featurize import MODALITIES, Featurizer
    featurizer = Featurizer(create_encoders(EncoderSpec()))
    return {m: featurizer.dim(m) for m in MODALITIES}


def head_for_tests(tmp_dir: Path) -> str:
    """The shipped head when it exists; otherwise a small random-weight head with the encoders' widths."""
    if DEFAULT_HEAD.exists():
        return str(DEFAULT_HEAD)
    from model.bvpec import BVPEC, BVPECConfig
    torch.manual_seed(0)
    model = BVPEC(BVPECConfig(input_dims=encoder_dims(), d_model=32, heads=2, dropout=0.0)).eval()
    path = Path(tmp_dir) / "random_head.pt"
    save_head(path, model, {"note": "random-weight head for tests"})
    return str(path)


def tiny_film(tmp_dir: Path, seconds: float = 9.0) -> Path:
    """A small H.264 + AAC film with a sidecar .srt (a line every 4 s)."""
    return make_textured_film(Path(tmp_dir) / "films" / "tiny.mp4",
                     FilmSpec(seconds=seconds, width=320, height=180, fps=12, gop_s=4.0, crf=35))
