"""The HTML report: built from an output directory that follows the schemas, with a real PyAV-made film."""
from __future__ import annotations

import base64
import dataclasses
import datetime
import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline import report
from pipeline.report import build as report_build
from pipeline.report import data as tables
from pipeline.report import frames as stills
from schemas import EMOTIONS, PROB_COLUMNS, TABLES, rows_to_table
from testing.films import SECOND_COLOURS, make_colour_film, make_talking_film

CHROMIUM = Path("/usr/bin/chromium")
UTC = datetime.timezone.utc


def clip_rows(film_id: str, film_path: str, n: int, run_id: str, seed: int, clip_s: float = 1.0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        logits = rng.normal(size=len(EMOTIONS))
        logits[i % len(EMOTIONS)] += 3.0  # every emotion wins some clips
        probs = np.exp(logits) / np.exp(logits).sum()
        row = {
            "film_id": film_id, "film_path": film_path, "fingerprint": "fp-" + film_id, "clip_index": i,
            "start_s": i * clip_s, "end_s": (i + 1) * clip_s, "segment_source": "subtitle",
            "text": None if i % 5 == 4 else f"line {i} of <{film_id}> & friends", "text_source": "subtitle",
            "language": "en", "n_frames": 4, "n_faces": 0, "has_audio": True,
            "emotion": EMOTIONS[int(np.argmax(probs))], "confidence": float(probs.max()),
            "valence": 0.1, "arousal": 0.2, "modalities_used": ["text", "vision"],
            "gate_text": 0.6, "gate_vision": 0.4, "gate_face": 0.0, "gate_audio": 0.0,
            "model_version": "bvpec-test01", "run_id": run_id, "config_hash": "cfg1",
        }
        row.update({c: float(p) for c, p in zip(PROB_COLUMNS, probs)})
        rows.append(row)
    return rows


def write(table_dir: Path, name: str, rows: list[dict], table: str) -> None:
    table_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows_to_table(rows, TABLES[table]), table_dir / f"{name}.parquet")


def manifest_row(run_id, film_id, path, status, when, duration=None, n_clips=None, error=None):
    return {"run_id": run_id, "film_id": film_id, "film_path": path, "size_bytes": 1000, "fingerprint": "fp",
            "config_hash": "cfg1", "model_version": "bvpec-test01", "status": status, "duration_s": duration,
            "n_clips": n_clips, "output_file": None, "error": error, "processed_at": when}


@pytest.fixture
def output_dir(tmp_path) -> Path:
    """Two runs: run1 scored film 'alpha' and failed 'broken'; run2 skipped 'alpha' (unchanged), scored 'beta'
    (whose media file has gone: placeholders) and failed 'broken' again."""
    film = make_colour_film(tmp_path / "alpha.mp4")
    out = tmp_path / "out"
    t1 = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    t2 = datetime.datetime(2026, 1, 2, tzinfo=UTC)
    write(out / "clips", "alpha", clip_rows("alpha", str(film), 6, "run1", seed=1), "clips")
    write(out / "clips", "beta", clip_rows("beta", str(tmp_path / "gone.mp4"), 30, "run2", seed=2, clip_s=2.0), "clips")
    write(out / "manifest", "run1", [
        manifest_row("run1", "alpha", str(film), "ok", t1, 6.0, 6),
        manifest_row("run1", "broken", "/films/broken.mp4", "failed", t1, error="old failure"),
    ], "manifest")
    write(out / "manifest", "run2", [
        manifest_row("run2", "alpha", str(film), "skipped", t2, 6.0, 6),
        manifest_row("run2", "beta", str(tmp_path / "gone.mp4"), "ok", t2, 60.0, 30),
        manifest_row("run2", "broken", "/films/broken.mp4", "failed", t2, error="decode: InvalidDataError"),
    ], "manifest")
    err = {"film_path": "/films/broken.mp4", "film_id": "broken", "clip_index": None, "fatal": True}
    write(out / "errors", "run1", [{**err, "run_id": "run1", "stage": "probe", "error_type": "OldError",
                                    "message": "superseded by run2", "created_at": t1}], "errors")
    write(out / "errors", "run2", [
        {**err, "run_id": "run2", "stage": "decode", "error_type": "InvalidDataError",
         "message": "Invalid data found when processing input", "created_at": t2},
        {**err, "run_id": "run2", "film_id": "beta", "film_path": str(tmp_path / "gone.mp4"), "clip_index": 3,
         "stage": "transcribe", "error_type": "Warning", "message": "no speech", "fatal": False, "created_at": t2},
    ], "errors")
    (out / "clips" / ".tmp-alpha.parquet").write_bytes(b"half-written")  # a writer's temp file is ignored
    return out


def _images(html: str, kind: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(rf'src="data:image/{kind};base64,([A-Za-z0-9+/=]+)"', html)]


def test_load_output_takes_the_latest_manifest_row_and_its_errors(output_dir):
    data = tables.load_output(str(output_dir))
    status = {f.film_id: f.status for f in data.films}
    assert status == {"alpha": "skipped", "beta": "ok", "broken": "failed"}
    assert data.latest_run_id == "run2" and data.run_ids == ["run1", "run2"]
    # run1's error for 'broken' was superseded; 'broken' failed in run2 for a decode error.
    assert set(data.errors.column("run_id").to_pylist()) == {"run2"}
    alpha = data.film("alpha")
    assert alpha.n_clips == 6 and alpha.n_scored == 6 and alpha.duration_s == 6.0
    assert np.isclose(alpha.shares.sum(), 1.0) and alpha.model_versions == ("bvpec-test01",)
    assert data.film("broken").error == "decode: InvalidDataError"


def test_load_output_reads_both_table_layouts(tmp_path):
    """An output written by an older run (manifest/<run_id>.parquet without wall_s, errors/<run_id>.parquet)
    and a newer one (manifest/<run_id>/<film_id>.parquet, skipped.parquet, errors/<run_id>/<film_id>.parquet)
    side by side: every file is read, temp files are not, the latest row per film wins."""
    import pyarrow as pa
    from schemas import manifest as manifest_schema
    out = tmp_path / "out"
    t1, t2 = datetime.datetime(2026, 1, 1, tzinfo=UTC), datetime.datetime(2026, 1, 2, tzinfo=UTC)
    old_schema = pa.schema([f for f in manifest_schema.SCHEMA if f.name != "wall_s"])  # version 1.0 files
    (out / "manifest").mkdir(parents=True)
    pq.write_table(rows_to_table([
        manifest_row("old", "alpha", "/f/alpha.mp4", "ok", t1, 6.0, 6),
        manifest_row("old", "broken", "/f/broken.mp4", "failed", t1, error="probe: OldError"),
        manifest_row("old", "gamma", "/f/gamma.mp4", "ok", t1, 9.0, 3),
    ], old_schema), out / "manifest" / "old.parquet")
    write(out / "errors", "old", [{"run_id": "old", "film_path": "/f/broken.mp4", "film_id": "broken",
                                   "clip_index": None, "fatal": True, "stage": "probe", "error_type": "OldError",
                                   "message": "superseded", "created_at": t1}], "errors")
    # The new run: one file per film it processed, one for the films it skipped.
    new_m = out / "manifest" / "new"
    write(new_m, "beta", [{**manifest_row("new", "beta", "/f/beta.mp4", "ok", t2, 4.0, 4), "wall_s": 1.5}],
          "manifest")
    write(new_m, "broken", [manifest_row("new", "broken", "/f/broken.mp4", "failed", t2,
                                         error="decode: InvalidDataError")], "manifest")
    write(new_m, "skipped", [manifest_row("new", "alpha", "/f/alpha.mp4", "skipped", t2, 6.0, 6)], "manifest")
    write(out / "errors" / "new", "broken", [{
        "run_id": "new", "film_path": "/f/broken.mp4", "film_id": "broken", "clip_index": None, "fatal": True,
        "stage": "decode", "error_type": "InvalidDataError", "message": "Invalid data", "created_at": t2}], "errors")
    # Writers' temporary files and folders are never read (these would win, or fail to parse, if they were).
    later = datetime.datetime(2026, 1, 3, tzinfo=UTC)
    write(new_m, ".gamma.parquet.tmp-ab12cd", [manifest_row("new", "gamma", "/f/gamma.mp4", "failed", later)],
          "manifest")
    pq.write_table(rows_to_table([manifest_row("new", "gamma", "/f/gamma.mp4", "failed", later)],
                                 TABLES["manifest"]), new_m / ".gamma.parquet.tmp-ef34ab")
    (new_m / ".beta.parquet").write_bytes(b"half-written")
    write(out / "manifest" / "_temporary" / "new", "gamma",
          [manifest_row("new", "gamma", "/f/gamma.mp4", "failed", later)], "manifest")
    (out / "errors" / "new" / "_beta.parquet").write_bytes(b"half-written")
    (new_m / "zeta.parquet").write_bytes(b"damaged")  # a damaged file is left out, with a warning

    data = tables.load_output(str(out))
    assert {f.film_id: f.status for f in data.films} == {"alpha": "skipped", "beta": "ok", "broken": "failed",
                                                         "gamma": "ok"}
    assert data.run_ids == ["old", "new"] and data.latest_run_id == "new"
    assert data.film("broken").error == "decode: InvalidDataError"
    assert data.errors.column("message").to_pylist() == ["Invalid data"]  # the old run's error is superseded
    assert data.film("gamma").run_id == "old" and data.film("gamma").duration_s == 9.0
    wall = dict(zip(data.manifest.column("film_id").to_pylist(), data.manifest.column("wall_s").to_pylist()))
    assert wall == {"alpha": None, "beta": 1.5, "broken": None, "gamma": None}  # old files: nulls


def test_thumbnail_comes_from_the_right_moment(tmp_path):
    film = make_colour_film(tmp_path / "f.mp4")
    frames = stills.frames_at(str(film), [0.5, 2.5, 4.5, 99.0], width=80)
    for t, colour in [(0.5, SECOND_COLOURS[0]), (2.5, SECOND_COLOURS[2]), (4.5, SECOND_COLOURS[4])]:
        assert frames[t].shape == (48, 80, 3)
        assert np.abs(frames[t].reshape(-1, 3).mean(0) - colour).max() < 25, t
    assert frames[99.0] is not None  # past the end: the last frame rather than nothing
    assert stills.frames_at(str(tmp_path / "missing.mp4"), [1.0]) == {1.0: None}
    (tmp_path / "junk.mp4").write_bytes(b"not a film at all" * 100)
    assert stills.thumbnails(str(tmp_path / "junk.mp4"), [1.0]) == {1.0: None}


def test_report_content(output_dir, tmp_path):
    out = report.build_report(str(output_dir), str(tmp_path / "r" / "report.html"))
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>")
    # Summary: one scored, one skipped (already indexed), one failed with its reason from the errors table.
    for text in ("alpha", "beta", "broken", "bvpec-test01", "Invalid data found when processing input",
                 "InvalidDataError", "no speech", "skipped (already indexed)"):
        assert text in html, text
    assert "superseded by run2" not in html
    assert re.search(r'<div class="v">36</div><div class="k">clips</div>', html)
    assert all(e in html for e in EMOTIONS)
    # Text is escaped, never injected as markup.
    assert "&lt;alpha&gt; &amp; friends" in html and "<alpha>" not in html
    # Charts are PNGs, thumbnails are JPEGs decoded from the film; the unreadable film gets placeholders.
    pngs, jpegs = _images(html, "png"), _images(html, "jpeg")
    assert len(pngs) == 3 and all(p.startswith(b"\x89PNG") for p in pngs)  # catalogue + 2 film arcs
    assert len(jpegs) >= len(EMOTIONS) - 2 and all(j.startswith(b"\xff\xd8") for j in jpegs)
    assert "no frame (film not readable)" in html
    # Self-contained: no external resource of any kind.
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html and "@import" not in html and "url(" not in html


def test_thumbnail_pixels_match_the_clip(output_dir, tmp_path):
    from PIL import Image
    html = report.build_report(str(output_dir), str(tmp_path / "report.html"),
                               report.ReportOptions(films=("alpha",), top_clips=1)).read_text()
    # Each alpha clip i spans second i, so a moment card's thumbnail colour names its clip.
    cards = re.findall(r'data:image/jpeg;base64,([^"]+)".*?clip (\d+)</span>', html, flags=re.S)
    assert cards
    for b64, clip in cards:
        pixel = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")).reshape(-1, 3).mean(0)
        assert np.abs(pixel - SECOND_COLOURS[int(clip)]).max() < 25, clip


def test_large_catalogue_stays_compact(tmp_path):
    out = tmp_path / "out"
    for k in range(40):
        write(out / "clips", f"film{k:03d}", clip_rows(f"film{k:03d}", f"/nowhere/{k}.mp4", 8, "r", seed=k), "clips")
    opts = report.ReportOptions(max_films=3, max_table_rows=25, max_chart_films=10, thumbnails=False)
    html = report.build_report(str(out), str(tmp_path / "big.html"), opts).read_text()
    assert html.count('class="film-head"') == 3
    assert "and 15 more film(s) not listed" in html and "37 more scored film(s)" in html
    assert "ALL FILMS" not in html  # drawn in the chart image, not as text
    assert len(_images(html, "png")) == 4  # catalogue chart + 3 arcs
    assert "film039" not in html and "film024" in html
    assert report.main(["--input", str(out), "--output", str(tmp_path / "cli.html"), "--max_films", "1",
                        "--no_thumbnails", "--films", "film007"]) == 0
    assert 'id="film-film007"' in (tmp_path / "cli.html").read_text()


def test_empty_output_directory(tmp_path):
    html = report.build_report(str(tmp_path / "nothing"), str(tmp_path / "e.html")).read_text()
    assert "No scored clips yet." in html and "No errors recorded." in html


def features_row(film_id, film_path, clip_index, tokens: dict) -> dict:
    row = {"film_id": film_id, "film_path": film_path, "clip_index": clip_index, "encoder_version": "enc-test"}
    for m, t in tokens.items():
        row.update({f"{m}_len": len(t), f"{m}_dim": t.shape[1], f"{m}_tokens": t.ravel() if len(t) else None,
                    f"{m}_pooled": t.mean(0) if len(t) else None})
    return row


def test_explain_draws_attention_from_the_features_table(output_dir, tmp_path):
    torch = pytest.importorskip("torch")
    from model.bvpec import BVPEC, BVPECConfig
    from model.checkpoints import save_head
    torch.manual_seed(0)
    dims = {"text": 16, "vision": 12, "face": 8, "audio": 6}
    head = tmp_path / "head.pt"
    save_head(head, BVPEC(BVPECConfig(input_dims=dims, d_model=16, heads=2)), {"note": "untrained, for tests"})
    rng = np.random.default_rng(0)
    film = str(tmp_path / "alpha.mp4")
    # clip 2's line "line 2 of <alpha> & friends" is 10 word pieces with [CLS] and [SEP]; 4 frames x 5 tokens.
    tokens = {"text": rng.normal(size=(10, 16)), "vision": rng.normal(size=(20, 12)),
              "face": np.zeros((0, 8)), "audio": rng.normal(size=(7, 6))}
    write(output_dir / "features", "alpha", [features_row("alpha", film, i, {m: t.astype(np.float32)
                                                                             for m, t in tokens.items()})
                                             for i in range(6)], "features")
    opts = report.ReportOptions(explain=("alpha", 2), head=str(head), films=("alpha",))
    html = report.build_report(str(output_dir), str(tmp_path / "x.html"), opts).read_text()
    section = html[html.index('id="explain"'):html.index('id="catalogue"')]
    assert "alpha #2" in section and "line 2 of &lt;alpha&gt; &amp; friends" in section
    assert "Tokens read from the features table (encoders enc-test)" in section
    assert len(_images(section, "png")) == 1 and len(_images(section, "jpeg")) == 4  # figure + its 4 frames
    # The head's attention rows over the frames are probabilities; gates only for the modalities present.
    from pipeline.report import explain as explainer
    model, _ = __import__("model.checkpoints", fromlist=["load_head"]).load_head(str(head))
    res = explainer.run_head(model, {m: t.astype(np.float32) for m, t in tokens.items()})
    assert res["attention"]["vision"].shape == (10, 20) and res["attention"]["audio"].shape == (10, 7)
    assert np.allclose(res["attention"]["vision"].sum(1), 1.0, atol=1e-4)
    assert res["gates"]["face"] == 0.0 and np.isclose(sum(res["gates"].values()), 1.0)
    assert explainer.text_token_labels(explainer._tokenizer(), "line 2 of <alpha> & friends", 10) == \
        ["[CLS]", "line", "2", "of", "<", "alpha", ">", "&", "friends", "[SEP]"]
    assert explainer.text_token_labels(None, None, 1) == ["[query]"]


def test_explain_argument_is_parsed():
    _, opts = report.parse_args(["--input", "x", "--explain", "my:film:12"])
    assert opts.explain == ("my:film", 12)
    with pytest.raises(SystemExit):
        report.parse_args(["--input", "x", "--explain", "film"])


def render_in_chromium(html: Path, tmp_path: Path, screenshot: Path, size=(1280, 2400)) -> tuple[str, str]:
    """Render headless; returns (dumped DOM, browser log)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chrome-profile'}", "--enable-logging=stderr", "--v=0",
             "--hide-scrollbars", f"--window-size={size[0]},{size[1]}"]
    url = html.resolve().as_uri()
    shot = subprocess.run([str(CHROMIUM), *flags, f"--screenshot={screenshot}", url],
                          capture_output=True, text=True, timeout=120)
    dom = subprocess.run([str(CHROMIUM), *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and dom.returncode == 0, shot.stderr[-2000:] + dom.stderr[-2000:]
    return dom.stdout, shot.stderr + dom.stderr


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(output_dir, tmp_path):
    html = report.build_report(str(output_dir), str(tmp_path / "report.html"))
    dom, log = render_in_chromium(html, tmp_path, tmp_path / "shot.png")
    assert "Run summary" in dom and 'id="film-alpha"' in dom
    console = [ln for ln in log.splitlines() if "CONSOLE" in ln or "Uncaught" in ln or "Failed to load" in ln
               or "ERR_" in ln]
    assert not console, console
    from PIL import Image
    shot = Image.open(tmp_path / "shot.png")
    assert shot.size == (1280, 2400)
    assert len(set(shot.convert("RGB").resize((64, 64)).getdata())) > 50  # the page drew charts, not a blank


# -- from a real pipeline output ------------------------------------------------------------------------------
def _scoring_available() -> bool:
    """Full scoring needs the shipped head and every encoder; without them the pipeline runs --no_score."""
    import importlib.util
    from model.checkpoints import DEFAULT_HEAD
    return DEFAULT_HEAD.exists() and all(importlib.util.find_spec(f"model.encoders.{m}") for m in
                                         ("text", "vision", "faces", "audio"))


def _run_pipeline(inputs: list[str], out: Path, extra: list[str]) -> None:
    from pipeline import run as pipeline_run
    argv = [x for i in inputs for x in ("--input", i)] + ["--output", str(out), "--runner=DirectRunner",
                                                           "--transcribe", "never", *extra]
    if not _scoring_available():
        argv.append("--no_score")
    pipeline_run.run(argv, save_main_session=False)


def _check_report_of_real_output(out: Path, html: str) -> tables.OutputData:
    data = tables.load_output(str(out))
    assert data.films, "the pipeline wrote no manifest"
    for f in data.films:
        assert f.film_id in html
        if f.status == "failed":
            reasons = [r["message"] for r in data.errors.to_pylist() if r["film_id"] == f.film_id and r["fatal"]]
            assert reasons and all(r[:40] in html.replace("&#39;", "'").replace("&quot;", '"') for r in reasons)
        if f.n_clips:
            assert f'id="film-{report_build._anchor(f.film_id)}"' in html
    if any(f.n_scored for f in data.films):
        assert all(e in html for e in EMOTIONS) and _images(html, "jpeg")
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<script" not in html
    return data


@pytest.mark.timeout(600)
def test_report_from_a_real_pipeline_run(tmp_path):
    films = tmp_path / "films"
    films.mkdir()
    make_talking_film(films / "talk.mp4")
    (films / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    out = tmp_path / "out"
    _run_pipeline([str(films / "*.mp4")], out, [])
    html = report.build_report(str(out), str(tmp_path / "report.html")).read_text()
    data = _check_report_of_real_output(out, html)
    status = {f.film_path.rsplit("/", 1)[-1]: f.status for f in data.films}
    assert status.get("broken.mp4") == "failed"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_report_of_the_sintel_trailer(tmp_path):
    sintel = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media" / "sintel" / "sintel_trailer.mp4"
    if not sintel.exists():
        pytest.skip("shared data not present")
    out = tmp_path / "out"
    _run_pipeline([str(sintel)], out, ["--write_features"])
    film = tables.load_output(str(out)).films[0]
    opts = report.ReportOptions()
    if film.n_scored and (out / "features").exists():
        opts = report.ReportOptions(explain=(film.film_id, 0))
    html = report.build_report(str(out), str(tmp_path / "sintel.html"), opts).read_text()
    _check_report_of_real_output(out, html)
    if CHROMIUM.exists():
        _, log = render_in_chromium(tmp_path / "sintel.html", tmp_path, tmp_path / "sintel.png")
        assert not [ln for ln in log.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]


@pytest.mark.timeout(600)
def test_explain_without_features_uses_the_heads_tuned_encoders(tmp_path):
    """No features table: --explain decodes the clip with decode_clip and featurizes it with the head's encoders
    (create_encoders: the shipped head's tuned text and face weights), the same tokens the pipeline computes."""
    pytest.importorskip("torch")
    from model.checkpoints import DEFAULT_HEAD
    from model.encoders import EncoderSpec, Encoders, create_encoders, tuned_states
    from model.featurize import ClipMedia, Featurizer
    from pipeline.report import explain as explainer
    from transforms.decode import DecodeConfig, decode_clip
    if not DEFAULT_HEAD.exists() or not all(tuned_states(EncoderSpec(head=str(DEFAULT_HEAD)))):
        pytest.skip("the shipped head with tuned text and face weights is not present")
    try:
        create_encoders(EncoderSpec(head=str(DEFAULT_HEAD))).text
    except Exception as exc:  # noqa: BLE001 - the encoder weight packages are optional
        pytest.skip(f"encoders not installed: {exc}")
    film = make_talking_film(tmp_path / "talk.mp4")
    out = tmp_path / "out"
    write(out / "clips", "talk", clip_rows("talk", str(film), 4, "run1", seed=3), "clips")
    assert not (out / "features").exists()

    res = explainer.explain_clip(str(out), "talk", 1, head=str(DEFAULT_HEAD))
    versions = res["encoder_versions"]
    assert "+ft" in versions["text"] and "+ft" in versions["face"], versions
    assert "decoded and featurized again" in res["source"]
    # The tokens are the featurizer's over the pipeline's decode of that clip, with the head's encoders.
    row = tables.read_clips(str(out), "talk").to_pylist()[1]
    spec = EncoderSpec(head=str(DEFAULT_HEAD), device="cpu", image_size=DecodeConfig().image_size)
    decoded = decode_clip(str(film), row["start_s"], row["end_s"], DecodeConfig(), text=row["text"],
                          context=("line 0 of <talk> & friends",))
    expected = Featurizer(create_encoders(spec)).clip(ClipMedia.of(decoded)).tokens
    assert set(res["tokens"]) == set(expected)
    for m, t in expected.items():
        assert res["tokens"][m].shape == t.shape and np.allclose(res["tokens"][m], t, atol=1e-5), m
    assert len(res["tokens"]["vision"]) == DecodeConfig().frames_per_clip * create_encoders(spec).vision.tokens_per_frame
    # ...and not the packaged, untuned text encoder's.
    untuned = Featurizer(Encoders(dataclasses.replace(spec, tuned=False)), modalities=("text",))
    plain = untuned.clip(ClipMedia.of(decoded)).tokens["text"]
    assert plain.shape == res["tokens"]["text"].shape and not np.allclose(plain, res["tokens"]["text"], atol=1e-3)
    # The frames shown are the clip's, at the pipeline's sample times (second 1 of the film is green).
    assert len(res["frames"]) == DecodeConfig().frames_per_clip
    from PIL import Image
    for f in res["frames"]:
        rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(f["b64"]))).convert("RGB"))
        assert rgb.shape == (96, 160, 3) and np.abs(rgb.reshape(-1, 3).mean(0) - SECOND_COLOURS[1]).max() < 25
    # Through the command line too: the section says where its tokens came from.
    html_path = tmp_path / "x.html"
    assert report.main(["--input", str(out), "--output", str(html_path), "--explain", "talk:1",
                        "--no_thumbnails"]) == 0
    section = (html_path.read_text())
    section = section[section.index('id="explain"'):section.index('id="catalogue"')]
    assert "decoded and featurized again with the head&#39;s encoders" in section
