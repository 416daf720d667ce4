"""A head learns only the modalities its training data held, and every command that scores with it refuses the others
(2026-12-06 review of a studio's retraining chain: a head trained without speech scored the film's audio anyway, its
audio branch at its initial weights and the shipped research-trained speech classifier backing labels)."""
from __future__ import annotations

import logging
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from model.bvpec import BVPEC, BVPECConfig
from model.checkpoints import DEFAULT_HEAD, learnt_modalities, load_head_meta, save_head

DIMS = {"text": 12, "vision": 10, "face": 6, "audio": 5}
NO_AUDIO = "learnt no audio (its training data held none)"


class Reached(Exception):
    """A model load the refusal should have come before."""


def reached(*_args, **_kwargs):
    """Stands in for create_encoders: the test fails loudly where a command got past its launch checks."""
    raise Reached


def tiny_head(path: Path, meta: dict) -> str:
    """A random-weight head with the test widths, saved with `meta`."""
    torch.manual_seed(0)
    save_head(path, BVPEC(BVPECConfig(input_dims=DIMS, d_model=16, heads=2, dropout=0.0)).eval(), meta)
    return str(path)


@pytest.fixture
def heads(tmp_path) -> SimpleNamespace:
    """A head that learnt no audio (as pipeline.train records it) and one written before the record."""
    return SimpleNamespace(no_audio=tiny_head(tmp_path / "no_audio.pt", {"trained_modalities": ["text", "vision",
                                                                                                  "face"]}),
                           older=tiny_head(tmp_path / "older.pt", {"note": "no record of its training data"}))


def data_file(tmp_path: Path, name: str) -> str:
    """An empty file a --data spec can name (the refusals come before any is read)."""
    path = tmp_path / name
    path.write_text("")
    return str(path)


def test_a_head_learnt_what_its_record_says_and_all_four_without_one(heads):
    assert learnt_modalities(heads.no_audio) == ("text", "vision", "face")
    assert learnt_modalities(heads.older) == ("text", "vision", "face", "audio")
    assert learnt_modalities(None) == learnt_modalities(str(DEFAULT_HEAD)) == ("text", "vision", "face", "audio")


def test_pipeline_train_records_the_modalities_its_examples_held_and_says_the_others(tmp_path, monkeypatch, caplog):
    """A training run on lines and faces (and pairs of them): its head records text and face, and one line names
    the modalities it had no data for. The encoders are stand-ins: the record is what is tested, not the features."""
    from pipeline import train
    from training.datasets import Example
    from training.loop import LabelledSet
    rng = np.random.default_rng(0)

    def fake_set(spec, _encoders, **_kwargs) -> LabelledSet:
        modality = "text" if spec.startswith("meld:") else "face"
        items = [{modality: rng.standard_normal((2, DIMS[modality])).astype(np.float16)} for _ in range(14)]
        return LabelledSet(spec, items, [Example(label=i % 7) for i in range(14)])
    monkeypatch.setattr(train, "create_encoders", lambda spec: SimpleNamespace(versions={}))
    monkeypatch.setattr(train, "feature_dims", lambda enc: DIMS)
    monkeypatch.setattr(train, "load_set", fake_set)
    monkeypatch.setattr(train, "specs_overlap", lambda *args: (0, 0))
    out = tmp_path / "head.pt"
    with caplog.at_level(logging.WARNING, logger="pipeline.train"):
        meta = train.main(["--data", f"meld:{data_file(tmp_path, 'lines.csv')}", "--data",
                           f"faces:{data_file(tmp_path, 'faces.parquet')}", "--pairs", "20", "--epochs", "1",
                           "--d_model", "16", "--heads", "2", "--out", str(out)])
    assert meta["trained_modalities"] == load_head_meta(out)["trained_modalities"] == ["text", "face"]
    assert learnt_modalities(out) == ("text", "face")
    said = [r.getMessage() for r in caplog.records if "no training data" in r.getMessage()]
    assert said == ["the head learns no vision or audio (no training data for vision; no training data for audio); "
                    "run it with --modalities text,face"]


def test_a_variant_learns_only_the_modalities_it_reads():
    from pipeline.train import trained_modalities
    from training.datasets import Example
    from training.loop import LabelledSet
    items = [{"text": np.ones((1, 12), np.float16)}, {"face": np.ones((1, 6), np.float16), "audio": np.zeros((0, 5))}]
    train = LabelledSet("t", items, [Example(label=0), Example(label=1)])
    assert trained_modalities(train, "bvpec") == ["text", "face"]  # an empty token array is no audio
    assert trained_modalities(train, "text_only") == ["text"]


def test_the_refusal_and_the_warning_say_why_a_modality_was_not_learnt(tmp_path, caplog):
    """A --variant text_only head trained on lines and voices learnt no audio because it reads none, not because its
    data held none: the warning and the refusal say which (before, both said the data held none)."""
    from model.checkpoints import unlearnt_data_problem, unlearnt_modalities_problem
    from pipeline.train import say_untrained_modalities
    with caplog.at_level(logging.WARNING, logger="pipeline.train"):
        say_untrained_modalities(["text"], ["text", "audio"])
    assert caplog.records[-1].getMessage() == (
        "the head learns no vision, face or audio (no training data for vision; no training data for face; "
        "--variant reads no audio); run it with --modalities text")
    head = tiny_head(tmp_path / "text_only.pt", {"trained_modalities": ["text"], "data_modalities": ["text", "audio"]})
    assert "learnt no audio (its --variant reads none)" in unlearnt_modalities_problem(head, ["text", "audio"])
    assert "learnt no face (its training data held none)" in unlearnt_modalities_problem(head, ["text", "face"])
    # evaluate's refusal of a --data kind says the same (before 2026-12-07 it always said the data held none)
    assert "learnt no audio (its --variant reads none)" in unlearnt_data_problem(head, {"audio:v.parquet": ["audio"]})


def test_pipeline_run_refuses_at_launch_a_modality_the_head_did_not_learn(heads, tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import FilmEmotionOptions, option_problems
    from pipeline.run import run

    def problems(*argv: str) -> list[str]:
        return option_problems(PipelineOptions(list(argv)).view_as(FilmEmotionOptions))
    assert problems("--head", heads.no_audio) == [
        f"--head {heads.no_audio} {NO_AUDIO}: run with --modalities text,vision,face"]
    assert problems("--head", heads.no_audio, "--modalities", "audio,text") == [
        f"--head {heads.no_audio} {NO_AUDIO}: run with --modalities text"]
    assert problems("--head", heads.no_audio, "--modalities", "text,vision,face") == []
    assert problems("--head", heads.no_audio, "--no_score") == []  # nothing is scored
    assert problems("--head", heads.older) == [] and problems() == []
    if DEFAULT_HEAD.is_file():  # the shipped head, named: all four, as before
        assert problems("--head", str(DEFAULT_HEAD)) == []
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=r"^pipeline.run: --head .*no_audio.pt learnt no audio"):
        run(["--input", str(tmp_path), "--output", str(out), "--head", heads.no_audio], save_main_session=False)
    assert not out.exists()


def test_evaluate_refuses_a_modality_or_a_data_kind_the_head_did_not_learn(heads, tmp_path, monkeypatch, capsys):
    from pipeline import evaluate
    monkeypatch.setattr(evaluate, "create_encoders", reached)
    lines, voices = f"meld:{data_file(tmp_path, 'dev.csv')}", f"audio:{data_file(tmp_path, 'voices.parquet')}"
    for argv, said in (([lines, "--modalities", "text,audio"], f"{NO_AUDIO}: run with --modalities text"),
                       ([voices, "--modalities", "text,vision,face"], f"{NO_AUDIO}: leave out --data {voices}"),
                       ([voices], f"{NO_AUDIO}: leave out --data {voices}")):
        with pytest.raises(SystemExit) as stop:
            evaluate.main(["--data", *argv, "--head", heads.no_audio])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and f"--head {heads.no_audio} {said}" in err, err
    # (a set the check reads: since 2026-12-07 an audio: set is compared with what trained the speech classifier the
    # head reads before the encoders load)
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"audio": [b"not decoded here"], "label": ["joy"], "speaker": ["s1"]}),
                   voices.split(":", 1)[1])
    for argv in ([lines, "--modalities", "text,vision,face", "--head", heads.no_audio],
                 [lines, "--head", heads.no_audio],  # without --modalities: the head's own
                 [voices, "--head", heads.older]):
        with pytest.raises(Reached):  # past the checks: the encoders load
            evaluate.main(["--data", *argv])


def test_calibrate_refuses_a_data_kind_the_head_did_not_learn(heads, tmp_path, monkeypatch):
    from pipeline import calibrate
    monkeypatch.setattr(calibrate, "create_encoders", reached)
    voices, lines = f"audio:{data_file(tmp_path, 'voices.parquet')}", f"meld:{data_file(tmp_path, 'dev.csv')}"
    with pytest.raises(SystemExit, match=rf"^pipeline.calibrate: --head .*no_audio.pt {re.escape(NO_AUDIO)}: "
                                         rf"leave out --data {re.escape(voices)}$"):
        calibrate.main(["--head", heads.no_audio, "--data", lines, "--data", voices, "--output", "x.pt"])
    for head, data in ((heads.no_audio, lines), (heads.older, voices)):
        with pytest.raises(Reached):
            calibrate.main(["--head", head, "--data", data, "--output", str(tmp_path / "x.pt")])


def test_rescore_refuses_a_modality_the_head_did_not_learn_before_reading_features(heads, tmp_path):
    from pipeline import rescore
    base = ["--features", str(tmp_path / "features"), "--output", str(tmp_path / "out"), "--head", heads.no_audio]
    with pytest.raises(SystemExit, match=rf"^pipeline.rescore: --head .*no_audio.pt {re.escape(NO_AUDIO)}: run with "
                                         r"--modalities text,vision,face$"):
        rescore.run(base)
    with pytest.raises(SystemExit, match="no features table"):  # past the check: the features are looked for
        rescore.run(base + ["--modalities", "text,vision,face"])


def test_a_head_the_launch_could_not_read_is_checked_where_the_run_scores(heads):
    """A --head on gs:// or s3:// (a cluster's) is not read at launch: the workers' scorer asks the same question
    before it loads any encoder, so such a head that learnt no audio fails its films with the launch's line (the
    next run tries them again) instead of scoring audio through a branch it never trained (before 2026-12-07)."""
    from transforms.score import FilmScorer, ScoreConfig
    with pytest.raises(ValueError, match=r"learnt no audio \(its training data held none\): run with --modalities "
                                         r"text,vision,face"):
        FilmScorer(ScoreConfig(head=heads.no_audio)).load()
