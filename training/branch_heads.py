"""What the branch-classifier trainers (training/scene_classifier.py, training/speech_classifier.py) share."""
from __future__ import annotations

import dataclasses


def ensemble(heads):
    """One head whose nets are the given heads' (same class, config and standardiser): SceneEmotionHead and
    SpeechHead both keep `cfg.members` nets beside one `mean`/`scale` standardiser."""
    out = type(heads[0])(dataclasses.replace(heads[0].cfg, members=len(heads)))
    out.mean.copy_(heads[0].mean)
    out.scale.copy_(heads[0].scale)
    for dst, h in zip(out.nets, heads):
        dst.load_state_dict(h.net.state_dict())
    return out.eval()
