"""The BVPEC head, batching, loss and checkpoints with small random inputs (no encoders needed)."""
import numpy as np
import pytest
import torch

from model.batching import collate, modality_dropout
from model.bvpec import BVPEC, BVPECConfig, MODALITIES, VARIANTS
from model.checkpoints import load_head, model_version, save_head
from model.losses import bvpec_loss, class_weights
from model.predict import predict
from schemas.labels import EMOTIONS

DIMS = {"text": 12, "vision": 10, "face": 6, "audio": 5}


def make_model(variant="bvpec", seed=0):
    torch.manual_seed(seed)
    return BVPEC(BVPECConfig(input_dims=DIMS, d_model=16, heads=2, dropout=0.0, variant=variant)).eval()


def item(rng, lens):
    return {m: rng.standard_normal((lens.get(m, 0), DIMS[m])).astype(np.float32) for m in MODALITIES}


def batch(seed=0):
    rng = np.random.default_rng(seed)
    return [item(rng, {"text": 5, "vision": 4, "face": 2, "audio": 7}),
            item(rng, {"text": 3, "vision": 0, "face": 1, "audio": 0}),
            item(rng, {"text": 0, "vision": 0, "face": 3, "audio": 0}),  # no line
            item(rng, {"text": 0, "vision": 2, "face": 0, "audio": 4})]


def test_collate_shapes_and_masks():
    inputs, masks = collate(batch(), DIMS)
    assert inputs["text"].shape == (4, 5, 12) and masks["text"].dtype == torch.bool
    assert masks["text"].sum(1).tolist() == [5, 3, 0, 0]
    assert masks["audio"].sum(1).tolist() == [7, 0, 0, 4]
    inputs, masks = collate([{"text": np.zeros((2, 12), np.float32)}], DIMS)
    assert inputs["vision"].shape == (1, 1, 10) and not masks["vision"].any()
    with pytest.raises(ValueError):
        collate([{"text": np.zeros((2, 3), np.float32)}], DIMS)


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_shapes_and_gates(variant):
    model = make_model(variant)
    inputs, masks = collate(batch(), DIMS)
    out = model(inputs, masks)
    assert out.logits.shape == (4, 7) and out.intensity.shape == (4, 2) and out.gates.shape == (4, 4)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.intensity).all()
    present = torch.stack([masks[m].any(1) for m in MODALITIES], 1)
    assert (out.gates[~present] == 0).all(), "missing modality must get gate 0"
    sums = out.gates.sum(1)
    assert torch.allclose(sums[sums > 0], torch.ones_like(sums[sums > 0]), atol=1e-5)
    if variant == "text_only":
        assert (out.gates[:, 1:] == 0).all()
    if variant == "vision_only":
        assert (out.gates[:, [0, 3]] == 0).all()
    if variant == "bvpec":
        for m in ("vision", "face", "audio"):
            assert out.attention[m].shape == (4, 2, inputs["text"].shape[1], inputs[m].shape[1])
        assert (out.attention["vision"][1] == 0).all()  # clip 1 has no vision


def test_masked_tokens_do_not_change_outputs():
    model = make_model()
    items = batch()
    inputs, masks = collate(items, DIMS)
    ref = model(inputs, masks)
    # Garbage in every padded position must not move any output.
    noisy = {m: torch.where(masks[m].unsqueeze(-1), x, torch.randn_like(x) * 100) for m, x in inputs.items()}
    out = model(noisy, masks)
    assert torch.allclose(ref.logits, out.logits, atol=1e-5)
    assert torch.allclose(ref.gates, out.gates, atol=1e-6)
    # Each clip alone (no padding at all) gives the same as in the padded batch.
    for i, it in enumerate(items):
        single = model(*collate([it], DIMS))
        assert torch.allclose(single.logits[0], ref.logits[i], atol=1e-5)


def test_missing_modality_contributes_exactly_zero():
    model = make_model()
    rng = np.random.default_rng(3)
    it = item(rng, {"text": 4, "face": 2})
    base = model(*collate([it], DIMS))
    # Same clip in a batch where another clip has long vision/audio: clip 0's output is unchanged.
    other = item(rng, {"text": 2, "vision": 6, "audio": 9})
    both = model(*collate([it, other], DIMS))
    assert torch.allclose(both.logits[0], base.logits[0], atol=1e-5)
    assert base.gates[0, 1] == 0 and base.gates[0, 3] == 0


def test_gradients_flow_and_no_text_clip_predicts():
    model = make_model().train()
    inputs, masks = collate(batch(), DIMS)
    out = model(inputs, masks)
    labels = torch.tensor([0, 3, 4, -1])
    targets = torch.tensor([[0.5, float("nan")], [float("nan")] * 2, [-1.0, 0.2], [float("nan")] * 2])
    loss, parts = bvpec_loss(out.logits, out.intensity, labels, targets, weights=class_weights([0, 3, 4, 4], 7))
    loss.backward()
    assert np.isfinite(parts["loss"]) and parts["mse"] > 0
    for name in ("align.text.conv.weight", "align.face.conv.weight", "align.vision.conv.weight",
                 "align.audio.conv.weight", "query_token", "gate.0.weight", "classifier.weight"):
        g = dict(model.named_parameters())[name].grad
        assert g is not None and g.abs().sum() > 0, name
    # Clip 2 has only a face: prediction is finite and depends on the face.
    model.eval()
    it = batch()[2]
    a = model(*collate([it], DIMS)).logits
    it2 = dict(it, face=it["face"] * -3)
    b = model(*collate([it2], DIMS)).logits
    assert torch.isfinite(a).all() and not torch.allclose(a, b)


def test_loss_masks_missing_targets():
    logits = torch.zeros(2, 7, requires_grad=True)
    inten = torch.zeros(2, 2, requires_grad=True)
    nan = float("nan")
    _, p = bvpec_loss(logits, inten, torch.tensor([1, 2]), torch.tensor([[nan, nan], [nan, nan]]))
    assert p["mse"] == 0.0
    _, p = bvpec_loss(logits, inten, torch.tensor([1, 2]), torch.tensor([[1.0, nan], [nan, nan]]), beta=1)
    assert p["mse"] == pytest.approx(1.0)
    w = class_weights([0] * 100 + [1] * 4, 7)
    assert w[1] > w[0] and w[2] == 0


def test_modality_dropout_keeps_one():
    _, masks = collate(batch(), DIMS)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        dropped = modality_dropout(masks, 0.9, g)
        present = torch.stack([dropped[m].any(1) for m in MODALITIES], 1)
        assert present.any(1).all()
        for m in MODALITIES:
            assert not (dropped[m] & ~masks[m]).any()


def test_checkpoint_roundtrip_and_predict(tmp_path):
    model = make_model()
    path = tmp_path / "head.pt"
    over = {"encoder.layer.5.output.dense.weight": torch.randn(4, 4)}
    save_head(path, model, {"training": "unit test", "text_encoder_overrides": over})
    loaded, meta = load_head(path)
    assert meta["training"] == "unit test" and meta["config"]["d_model"] == 16
    assert meta["text_encoder_overrides"]["encoder.layer.5.output.dense.weight"].dtype == torch.float32
    items = batch()
    preds = predict(loaded, items)
    ref = predict(model, items)
    assert len(preds) == 4
    for p, r in zip(preds, ref):
        assert p.probs.shape == (7,) and abs(p.probs.sum() - 1) < 1e-6 and p.emotion in EMOTIONS
        assert np.allclose(p.probs, r.probs, atol=2e-2)  # fp16 storage
        assert -1 <= p.valence <= 1
    assert preds[2].modalities_used == ["face"]
    assert preds[0].modalities_used == list(MODALITIES)
    v1 = model_version(path, "enc-a")
    assert v1 != model_version(path, "enc-b") and v1 == model_version(path, "enc-a")


def test_text_top_matches_full_encoder_and_overrides_load():
    """TextTop on cached lower states == the full BERT (what inference runs with the overrides applied)."""
    from transformers import BertConfig, BertModel
    from model.text_top import TextTop, TunedTextHead
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=50, hidden_size=12, num_hidden_layers=3, num_attention_heads=2,
                                intermediate_size=24)).eval()
    ids = torch.randint(1, 50, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    with torch.no_grad():
        hs = bert(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        top = TextTop(bert, 1).eval()
        out = top(hs[2], mask.bool())
    valid = mask.bool()
    assert torch.allclose(out[valid], hs[3][valid], atol=1e-5)
    assert (out[~valid] == 0).all()
    over = top.overrides()
    assert all(k.startswith("encoder.layer.2.") for k in over) and set(over) <= set(bert.state_dict())
    # TunedTextHead keeps only the line's leading positions after the top layers.
    head = BVPEC(BVPECConfig(input_dims={"text": 12, "vision": 4, "face": 4, "audio": 4}, d_model=8, heads=2))
    tuned = TunedTextHead(top, head).eval()
    items = [{"text": hs[2][i, :int(mask[i].sum())].numpy(), "text_line_len": np.array(3)} for i in range(2)]
    inputs, masks = collate(items, head.config.input_dims)
    assert inputs["text_line_len"].tolist() == [3, 3]
    res = tuned(inputs, masks)
    line_only = head(*collate([{"text": out[i, :3].numpy()} for i in range(2)], head.config.input_dims))
    assert torch.allclose(res.logits, line_only.logits, atol=1e-5)


def test_cross_attention_mask_equals_key_padding_and_imports_no_sympy():
    """The cross-attention blocks padded keys with attn_mask (bvpec._blocked): the same outputs and weights as
    key_padding_mask, without its shape check, which imports sympy (0.3 s of a worker's first batch)."""
    from model.bvpec import _blocked
    from testing.imports import modules_imported

    attn = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(3, 5, 16, generator=g), torch.randn(3, 6, 16, generator=g)
    valid = torch.tensor([[True] * 6, [True, True, False, False, False, False], [True] + [False] * 5])
    with torch.inference_mode():
        want = attn(q, k, k, key_padding_mask=~valid, need_weights=True, average_attn_weights=False)
        got = attn(q, k, k, attn_mask=_blocked(valid, q, 4), need_weights=True, average_attn_weights=False)
    assert all(torch.equal(a, b) for a, b in zip(want, got))
    code = ("import torch; from model.bvpec import BVPEC, BVPECConfig, MODALITIES; "
            "dims = dict(text=8, vision=8, face=7, audio=7); net = BVPEC(BVPECConfig(input_dims=dims)).eval(); "
            "net({m: torch.randn(2, 3, d) for m, d in dims.items()}, "
            "{m: torch.tensor([[True, False, False]] * 2) for m in MODALITIES})")
    assert modules_imported(code, ["sympy"]) == []
