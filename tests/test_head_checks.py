"""Heads that cannot score and rescores that cannot give what pipeline.run would write: a diverged head (weights not
finite) is neither saved nor accepted by --head, and its NaN scores never reach a clips row; rescore refuses a
features schema 1.0 film when frames are scored, a --batch_size below 1 and an --output that is the run's own."""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from model.bvpec import BVPEC, BVPECConfig
from model.checkpoints import FORMAT, load_head, save_head
from model.encoders import EncoderSpec, encoder_version
from model.predict import predict
from schemas import features as features_schema
from schemas import rows_to_table
from schemas.clips import SCHEMA as CLIPS_SCHEMA
from transforms.fuse import features_row, score_columns

DIMS = {"text": 12, "vision": 10, "face": 6, "audio": 5}


def small_head() -> BVPEC:
    """A random-weight head with the test widths."""
    torch.manual_seed(0)
    return BVPEC(BVPECConfig(input_dims=DIMS, d_model=16, heads=2, dropout=0.0)).eval()


def diverged(model: BVPEC) -> BVPEC:
    """The head with one weight matrix made NaN, as a training at --lr nan (or 1e12) leaves it."""
    with torch.no_grad():
        next(p for p in model.parameters() if p.dim() == 2).fill_(float("nan"))
    return model


@pytest.fixture
def head_path(tmp_path) -> str:
    path = tmp_path / "head.pt"
    save_head(path, small_head(), {"note": "random test head"})
    return str(path)


def random_tokens(rng) -> dict:
    return {m: rng.standard_normal((int(rng.integers(1, 4)), d)).astype(np.float32) for m, d in DIMS.items()}


# -- 1. a diverged head: not saved, refused at launch, never written as a label ---------------------------------
def test_save_head_refuses_weights_that_are_not_finite(tmp_path):
    """Before, a head with NaN weights was saved; one with weights beyond fp16's range was stored as infinities."""
    with pytest.raises(ValueError, match="not saved: its weights are not finite"):
        save_head(tmp_path / "nan.pt", diverged(small_head()), {})
    huge = small_head()
    with torch.no_grad():
        next(p for p in huge.parameters() if p.dim() == 2).fill_(1e5)  # finite in fp32, infinite in fp16 (stored)
    with pytest.raises(ValueError, match="not finite"):
        save_head(tmp_path / "huge.pt", huge, {})
    with pytest.raises(ValueError, match=r"temperature"):
        save_head(tmp_path / "temp.pt", small_head(), {"temperature": float("nan")})
    assert not list(tmp_path.iterdir())
    save_head(tmp_path / "ok.pt", small_head(), {})  # a finite head is saved as before
    assert load_head(tmp_path / "ok.pt")[0].config.d_model == 16


def test_head_check_refuses_a_checkpoint_with_weights_that_are_not_finite(tmp_path):
    """A file written before the save check (pipeline.train --lr nan exited 0): --head took it, and pipeline.run
    labelled every clip 'anger' with NaN probabilities. The launch check now says why in one line."""
    from pipeline.arg_types import head_path_arg, head_problem
    model = diverged(small_head())
    path = tmp_path / "diverged.pt"
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "state_dict": {k: v.half() for k, v in model.state_dict().items()},
                "meta": {"config": model.config.to_dict()}}, buf)
    path.write_bytes(buf.getvalue())
    problem = head_problem(str(path))
    assert problem and "not finite" in problem and "\n" not in problem
    with pytest.raises(argparse.ArgumentTypeError, match="weights are not finite"):
        head_path_arg(str(path))
    with pytest.raises(ValueError, match="not a usable BVPEC head"):
        load_head(path)


def test_training_that_diverges_stops_without_a_head():
    """pipeline.train --lr nan trained NaN weights and saved them with exit status 0."""
    from training.datasets import Example
    from training.loop import LabelledSet, train_head
    rng = np.random.default_rng(0)
    items = [{"text": rng.standard_normal((3, DIMS["text"])).astype(np.float16)} for _ in range(14)]
    train = LabelledSet("toy", items, [Example(label=i % 7) for i in range(14)])
    config = BVPECConfig(input_dims=DIMS, d_model=16, heads=2, dropout=0.0)
    with pytest.raises(SystemExit, match=r"training diverged: .* not finite .*--lr"):
        train_head(train, [], config, epochs=1, batch_size=8, lr=float("nan"))
    model, summary = train_head(train, [], config, epochs=1, batch_size=8)  # a sane rate trains as before
    assert summary["best_epoch"] == 1 and all(torch.isfinite(p).all() for p in model.parameters())


def test_clips_the_head_scores_as_nan_fail_their_film_at_a_retried_stage(tmp_path):
    """NaN probabilities were written as the argmax of NaN ('anger') in an ok film. Each such clip is now a fatal
    `fuse` row (the film fails; `fuse` is not a stage decided by the film's bytes, so the next run retries it)."""
    from model.featurize import Failure
    from transforms.elements import ClipSpec, DecodedClip
    from transforms.film import _Film, ProcessFilm
    from transforms.fuse import score_tokens
    from transforms.score import ClipResult, ScoreConfig
    from transforms.write import CONTENT_STAGES, SkipDone, error_summary
    rng = np.random.default_rng(1)
    tokens = [random_tokens(rng) for _ in range(3)]
    assert not any(isinstance(r, Failure) for r in score_tokens(small_head(), tokens, "v"))
    model = diverged(small_head())

    class NanScorer:  # the film step's scorer, with the diverged head
        cfg = ScoreConfig(batch_size=3)

        def score(self, clips):
            scored = score_tokens(model, tokens[:len(clips)], "v", evidence=[{} for _ in clips])
            return [ClipResult(t, (), None, s) for t, s in zip(tokens, scored)]
    scored = score_tokens(model, tokens, "v", evidence=[{} for _ in tokens])
    assert all(isinstance(r, Failure) and r.modality == "fuse" and r.error_type == "NonFiniteScores" for r in scored)
    assert "not finite" in scored[0].message
    step = ProcessFilm(str(tmp_path), "r", None, NanScorer())
    film = _Film(job=type("Job", (), {"ref": type("Ref", (), {"path": "/films/f.mp4", "film_id": "f"})(),
                                      "warnings": ()})(), step=step)
    film.batch = [DecodedClip(film_id="f", spec=ClipSpec(i, i, i + 1.0, "window"), frames=np.zeros((0, 2, 2, 3)),
                              frame_times=np.zeros(0), audio=np.zeros(16, np.float32), film_path="/films/f.mp4")
                  for i in range(3)]
    film.score_batch()
    assert film.scores == {}
    assert [(e.stage, e.error_type, e.fatal) for e in film.errors] == [("fuse", "NonFiniteScores", True)] * 3
    assert "fuse" not in CONTENT_STAGES
    assert not SkipDone._still_valid({"status": "failed", "error": error_summary(film.errors[0])})  # retried


# -- 2-4. rescore --------------------------------------------------------------------------------------------
def write_catalogue(root: Path, head: str, n_films: int = 2, n_clips: int = 3) -> dict[str, list[str]]:
    """A scored catalogue (clips and features tables) of random tokens, as pipeline.run --write_features leaves it;
    returns each film's labels."""
    rng = np.random.default_rng(7)
    version = encoder_version(EncoderSpec(head=head))
    model, _ = load_head(head)
    labels = {}
    for f in range(n_films):
        film_id, path = f"film{f}", f"/films/film{f}.mp4"
        toks = [random_tokens(rng) for _ in range(n_clips)]
        preds = predict(model, toks)
        feats = [features_row(film_id, path, i, t, version, {}) for i, t in enumerate(toks)]
        clips = [{"film_id": film_id, "film_path": path, "fingerprint": "fp", "clip_index": i, "start_s": 2.0 * i,
                  "end_s": 2.0 * i + 2, "segment_source": "window", "text_source": "none", "n_frames": 2,
                  "has_audio": True, "run_id": "r0", "config_hash": "c0", **score_columns(p, "old", None)}
                 for i, p in enumerate(preds)]
        for sub, rows, schema in (("features", feats, features_schema.SCHEMA), ("clips", clips, CLIPS_SCHEMA)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            pq.write_table(rows_to_table(rows, schema), root / sub / f"{film_id}.parquet")
        labels[film_id] = [p.emotion for p in preds]
    return labels


def as_features_schema_1_0(path: Path) -> None:
    """Rewrite a features file as features schema 1.0 wrote it: no scene_* columns."""
    old = pa.schema([f for f in features_schema.SCHEMA if not f.name.startswith("scene_")],
                    metadata={b"table": b"features", b"schema_version": b"1.0"})
    pq.write_table(pq.read_table(path).select(old.names).cast(old), path)


def rescore_errors(out: Path) -> list[tuple]:
    rows = [r for f in (out / "errors").rglob("*.parquet") for r in pq.read_table(f).to_pylist()]
    return sorted((r["film_id"], r["stage"], r["error_type"], r["fatal"]) for r in rows)


def test_rescore_refuses_a_features_1_0_film_when_frames_are_scored(tmp_path, head_path):
    """A 1.0 table holds no scene tokens: rescore gave its clips no scene evidence, changing labels and `grounded`
    without a word. The film is refused (its fatal row), the other films are rescored; leaving vision out scores
    it (there is then no scene evidence to give)."""
    from pipeline import rescore
    labels = write_catalogue(tmp_path / "run1", head_path)
    features = tmp_path / "run1" / "features"
    as_features_schema_1_0(features / "film0.parquet")
    out = tmp_path / "all"
    rescore.run(["--features", str(features), "--head", head_path, "--output", str(out), "--batch_size", "3"],
                save_main_session=False)
    assert sorted(f.stem for f in (out / "clips").glob("*.parquet")) == ["film1"]
    rows = sorted(pq.read_table(out / "clips" / "film1.parquet").to_pylist(), key=lambda r: r["clip_index"])
    assert [r["emotion"] for r in rows] == labels["film1"]
    assert rescore_errors(out) == [("film0", "rescore", "SceneNotStored", True)]
    out = tmp_path / "no_vision"
    rescore.run(["--features", str(features), "--head", head_path, "--output", str(out), "--batch_size", "3",
                 "--modalities", "text,face,audio"], save_main_session=False)
    assert sorted(f.stem for f in (out / "clips").glob("*.parquet")) == ["film0", "film1"]
    assert not (out / "errors").exists()


def test_a_head_that_cannot_read_the_features_fails_each_film_in_a_rescore(tmp_path, head_path):
    """A head of other input widths scores no clip: before 2026-12-07 rescore wrote every clip with null labels and
    only non-fatal rows, so the report read the films as rescored (found in review). The head's failure is fatal, as
    in a run."""
    from pipeline import rescore
    write_catalogue(tmp_path / "run1", head_path)
    torch.manual_seed(0)
    other = tmp_path / "wide.pt"
    save_head(other, BVPEC(BVPECConfig(input_dims={**DIMS, "vision": 11}, d_model=16, heads=2, dropout=0.0)).eval(), {})
    out = tmp_path / "re"
    rescore.run(["--features", str(tmp_path / "run1" / "features"), "--head", str(other), "--output", str(out),
                 "--no_encoder_check"], save_main_session=False)
    rows = rescore_errors(out)
    assert rows and {(stage, fatal) for _, stage, _, fatal in rows} == {("fuse", True)}, rows
    assert {film for film, *_ in rows} == {"film0", "film1"}


def test_rescore_reads_a_linked_features_folder_and_refuses_a_gpu_it_has_not(tmp_path, head_path):
    """Found in review (2026-12-07): a features folder reached through a link found no clips table beside the link
    (every film refused), and --device cuda on a machine without one was a traceback after the plan was written
    (every film then 'pending' in the report)."""
    from pipeline import rescore
    labels = write_catalogue(tmp_path / "run1", head_path)
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "features").symlink_to(tmp_path / "run1" / "features", target_is_directory=True)
    out = tmp_path / "re"
    rescore.run(["--features", str(tmp_path / "links" / "features"), "--head", head_path, "--output", str(out)],
                save_main_session=False)
    rows = sorted(pq.read_table(out / "clips" / "film0.parquet").to_pylist(), key=lambda r: r["clip_index"])
    assert [r["emotion"] for r in rows] == labels["film0"] and not (out / "errors").exists()
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="--device cuda: torch sees no CUDA device"):
            rescore.run(["--features", str(tmp_path / "run1" / "features"), "--head", head_path, "--output",
                         str(tmp_path / "gpu"), "--device", "cuda"], save_main_session=False)
        assert not (tmp_path / "gpu").exists()


@pytest.mark.parametrize("value", ["0", "-1"])
def test_rescore_refuses_a_batch_size_below_one_at_launch(tmp_path, capsys, value):
    """--batch_size 0 or -1 was a traceback mid-run."""
    from pipeline import rescore
    with pytest.raises(SystemExit) as stop:
        rescore.parse_args(["--features", str(tmp_path / "o" / "features"), "--output", str(tmp_path / "re"),
                            "--batch_size", value])
    assert stop.value.code == 2 and "--batch_size" in capsys.readouterr().err
    assert rescore.parse_args(["--features", str(tmp_path / "o" / "features"), "--output", str(tmp_path / "re"),
                               "--batch_size", "1"])[0].batch_size == 1


def test_rescore_refuses_a_run_id_that_is_no_plain_folder_name(tmp_path, capsys):
    """Its errors/<run_id>/ folder, as pipeline.run's: '../x' wrote outside errors/, '_x' was hidden from the report."""
    from pipeline import rescore
    for run_id in ("../x", "a/b", "_nightly"):
        with pytest.raises(SystemExit) as stop:
            rescore.parse_args(["--features", str(tmp_path / "o" / "features"), "--output", str(tmp_path / "re"),
                                "--run_id", run_id])
        assert stop.value.code == 2 and "--run_id" in capsys.readouterr().err


def test_rescore_refuses_the_runs_own_output(tmp_path, capsys):
    """--output the features' own output folder replaced its clips in place under the old manifest, and the run's
    next night deleted the rescore's error rows. Refused at launch, under another spelling or a link too."""
    from pipeline import rescore
    run = tmp_path / "out"
    (run / "features").mkdir(parents=True)
    (tmp_path / "link").symlink_to(run)
    for output in (run, f"{run}/", tmp_path / "link", run / "features" / ".."):
        with pytest.raises(SystemExit) as stop:
            rescore.parse_args(["--features", str(run / "features"), "--output", str(output)])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and "write to another folder" in err, output
    with pytest.raises(SystemExit):  # the clips read (--clips) are replaced in place just the same
        rescore.parse_args(["--features", str(tmp_path / "copy" / "features"), "--clips", str(run / "clips"),
                            "--output", str(run)])
    args, _ = rescore.parse_args(["--features", str(run / "features"), "--output", str(tmp_path / "out_v2")])
    assert args.output == str(tmp_path / "out_v2")
    for inside in (run / "clips", run / "features" / "v2"):  # (review) its tables then read with the run's
        with pytest.raises(SystemExit) as stop:
            rescore.parse_args(["--features", str(run / "features"), "--output", str(inside)])
        assert stop.value.code == 2 and "inside that table's folder" in capsys.readouterr().err, inside
    # (review, 2026-12-07) the features folder reached through links: the run's output all the same; and any
    # pipeline.run output (its manifest/), whose next night would skip every film with the rescore's labels
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "features").symlink_to(run / "features")
    (tmp_path / "links" / "clips").symlink_to(run / "clips", target_is_directory=True)
    (run / "manifest" / "r1").mkdir(parents=True)
    (run / "manifest" / "r1" / "a.parquet").write_bytes(b"")
    other = tmp_path / "other_run"
    (other / "manifest" / "r1").mkdir(parents=True)
    for features, output in ((tmp_path / "links" / "features", run), (run / "features", other)):
        with pytest.raises(SystemExit) as stop:
            rescore.parse_args(["--features", str(features), "--output", str(output)])
        assert stop.value.code == 2 and "write to another folder" in capsys.readouterr().err, output
    with pytest.raises(SystemExit):  # --text_languages no reader knows: at launch, not after every file is read
        rescore.parse_args(["--features", str(run / "features"), "--output", str(tmp_path / "v3"),
                            "--text_languages", "english"])
    with pytest.raises(SystemExit):  # a run id too long to name a file
        rescore.parse_args(["--features", str(run / "features"), "--output", str(tmp_path / "v3"), "--run_id", "r" * 200])


@pytest.mark.parametrize("epochs", [1, 5, 9, 10, 11])
def test_any_number_of_steps_trains(epochs):
    """10 steps in all (10 epochs of one batch, 5 of two) ended in ZeroDivisionError in OneCycleLR's warm-up; under
    10 there was no warm-up at all (found in review)."""
    from training.datasets import Example
    from training.loop import LabelledSet, train_head
    rng = np.random.default_rng(0)
    items = [{"text": rng.standard_normal((3, DIMS["text"])).astype(np.float16)} for _ in range(8)]
    train = LabelledSet("toy", items, [Example(label=i % 7) for i in range(8)])
    config = BVPECConfig(input_dims=DIMS, d_model=16, heads=2, dropout=0.0)
    model, summary = train_head(train, [], config, epochs=epochs, batch_size=8)
    assert summary["best_epoch"] == epochs and all(torch.isfinite(p).all() for p in model.parameters())
