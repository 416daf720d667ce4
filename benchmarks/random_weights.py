"""The shipped ViT and text encoder's architectures with random weights, for speed runs on a machine that cannot
receive the weight packages (the lent GPU machine takes 64 MiB per transfer; the two weigh 180 MB).

    python -m benchmarks.random_weights OUT [--text_from FOLDER]

Writes OUT/vit.safetensors (timm vit_small_patch14_dinov2) and OUT/text/ (the text model's config and tokenizer
files from --text_from, default the packaged MiniLM, with random weights), for `benchmarks.throughput
--vision_model OUT/vit.safetensors --text_model OUT/text`. A batch costs the same whatever the weights hold; the
labels of such a run mean nothing. The face detector, the classifiers and the head are small and stay real.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--text_from", default=None, help="a text model folder (default: the packaged MiniLM)")
    args = ap.parse_args(argv)
    import timm
    import torch
    import transformers
    from safetensors.torch import save_file

    from model.encoders.versions import TIMM_ARCH, default_text_model_path
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    vit = timm.create_model(TIMM_ARCH, pretrained=False, num_classes=0)
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(out / "vit.safetensors"))
    src = Path(args.text_from) if args.text_from else default_text_model_path()
    text = transformers.AutoModel.from_config(transformers.AutoConfig.from_pretrained(str(src)))
    text.save_pretrained(str(out / "text"))
    for name in TOKENIZER_FILES:
        if (src / name).exists():
            shutil.copy(src / name, out / "text" / name)
    print(f"wrote {out / 'vit.safetensors'} and {out / 'text'}")


if __name__ == "__main__":
    main()
