"""The labelled-data readers (training.datasets) and the row handling of training.features.features_for, on small sets
built here: image modes, label spellings, image folders, row numbers, lines, Hugging Face files, shards, samples and
paths. No encoder runs: features_for's featurizer is a stand-in that gives a token for whatever it is handed."""
from __future__ import annotations

import io
import json
import logging
import random
import wave
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageOps

from model.featurize import Featurized
from schemas.labels import EMOTIONS
from training import features
from training.datasets import NO_LINE, DataError, Example, load_dataset, spec_parts
from transforms.decode import decode_image


def encoded(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png(shade: int = 90) -> bytes:
    return encoded(Image.new("RGB", (8, 8), (shade, 40, 200)))


def wav(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def names(rows) -> list:
    return [EMOTIONS[e.label] if e.label >= 0 else None for e in rows]


class StandInFeaturizer:
    """model.featurize.Featurizer's calls that compute_features makes, without encoders: one token per face crop and
    line, and an audio token for a sound that is not silent (the speech gate's 'no speech heard' otherwise)."""

    def __init__(self, encoders, modalities=("text", "vision", "face", "audio")):
        self.encoders, self.modalities = encoders, modalities

    def face_tokens(self, images):
        return np.ones((len(images), 4), np.float32)

    def text_tokens(self, texts, contexts):
        return [np.ones((2, 4), np.float32) for _ in texts]

    def clip(self, clip):
        heard = len(clip.audio) and float(np.abs(clip.audio).max()) > 0.01
        tokens = {"audio": np.ones((1, 7) if heard else (0, 7), np.float32)}
        return Featurized(tokens | ({"text": np.ones((2, 4), np.float32)} if clip.text else {}))


@pytest.fixture()
def stand_in(monkeypatch, tmp_path):
    """features_for with the stand-in featurizer and a cache of its own; returns a call giving (rows, unreadable)."""
    monkeypatch.setattr(features, "Featurizer", StandInFeaturizer)
    monkeypatch.setattr(features, "cache_key", lambda kind, spec, *a, **k: features.fingerprint(spec) + kind)

    def run(spec: str, **kw):
        unreadable: list[int] = []
        encoders = SimpleNamespace(spec=SimpleNamespace(image_size=32))
        rows, feats = features.features_for(spec, encoders, cache_dir=tmp_path / "cache", unreadable=unreadable, **kw)
        assert len(rows) == len(feats)
        return rows, unreadable
    return run


# --- 1. images of more than 8 bits

def test_a_16_bit_or_float_grey_image_decodes_as_its_8_bit_original():
    """A 16-bit grey PNG (I;16), a 32-bit integer TIFF (I) and a float TIFF (F, values in [0, 1]) of one face decode
    as its 8-bit original. Before 2026-12-06 convert("RGB") clipped them at 255: the face came out near white."""
    grey = np.add.outer(np.arange(16) * 16, np.arange(16)).astype(np.uint8)  # 0..255
    want = decode_image(encoded(Image.fromarray(grey)))
    assert want[..., 0].tolist() == grey.tolist()
    for img, fmt in ((Image.fromarray(grey.astype(np.uint16) * 257), "PNG"),
                     (Image.fromarray(grey.astype(np.int32) * 257), "TIFF"),
                     (Image.fromarray(grey.astype(np.float32) / 255), "TIFF")):
        data = encoded(img, fmt)
        assert Image.open(io.BytesIO(data)).mode in ("I;16", "I", "F")
        assert np.array_equal(decode_image(data), want), Image.open(io.BytesIO(data)).mode
    # an I image whose values are 8-bit stays as it is
    assert np.array_equal(decode_image(encoded(Image.fromarray(grey.astype(np.int32)), "TIFF")), want)


def test_8_bit_images_decode_byte_for_byte_as_before():
    """IMAGE_RULE 3 changes only images of more than 8 bits: every 8-bit mode gives the pixels the rule before it
    gave (EXIF turn, then convert("RGB"))."""
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8))
    cases = [encoded(rgb), encoded(rgb.convert("L")), encoded(rgb.convert("P")), encoded(rgb.convert("RGBA")),
             encoded(rgb.convert("LA")), encoded(rgb.convert("1")), encoded(rgb, "JPEG", quality=90),
             encoded(rgb.convert("CMYK"), "JPEG"), encoded(rgb, "TIFF"), encoded(rgb, "BMP"), encoded(rgb, "GIF")]
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways
    cases.append(encoded(rgb, "JPEG", exif=exif.tobytes()))
    for data in cases:
        with Image.open(io.BytesIO(data)) as img:
            before = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
        assert decode_image(data).tobytes() == before.tobytes()


# --- 2. EmoryNLP's labels in any case

def test_emorynlp_labels_are_read_in_any_case(tmp_path):
    """A file with the feeling wheel's names in lower or upper case reads as the shipped one: before 2026-12-06 a
    lower-case file lost its joyful, mad, peaceful and powerful rows and every row its valence."""
    head = "Utterance,Speaker,Emotion,Scene_ID,Utterance_ID,Season,Episode\n"
    rows = [("Yes!", "Joyful"), ("Get out.", "Mad"), ("Fine.", "Peaceful"), ("I can.", "Powerful"),
            ("Hm.", "Neutral"), ("Oh no.", "Scared"), ("Sigh.", "Sad"), ("Huh.", "Bored")]
    want = ["joy", "anger", "neutral", "joy", "neutral", "fear", "sadness"]
    for case in (str.lower, str.upper, str):
        path = tmp_path / f"emory_{case.__name__}.csv"
        path.write_text(head + "".join(f"{t},Ross,{case(e)},1,{i},1,1\n" for i, (t, e) in enumerate(rows)))
        left_out = Counter()
        got = load_dataset(f"emorynlp:{path}", left_out)
        assert names(got) == want and [e.valence for e in got] == [1, -1, 1, 1, 0, -1, -1], case
        assert left_out == {case("Bored"): 1} and [e.row for e in got] == list(range(7))


# --- 3. image folders

def test_an_image_folder_reads_the_formats_pillow_reads_at_any_depth(tmp_path, caplog):
    """TIFF (JAFFE's), GIF and PGM faces are read, and faces in a subject's sub-folder (grouped by it); other files
    are counted in a warning. Before 2026-12-06 only .jpg/.jpeg/.png/.bmp/.webp directly in a label folder were
    read, the rest without a word, and a folder of TIFFs stopped with 'no row has a label (0 rows)'."""
    root = tmp_path / "faces"
    face = Image.new("L", (8, 8), 120)
    for rel, fmt in (("happy/a.tif", "TIFF"), ("happy/b.gif", "GIF"), ("sad/s1/c.pgm", "PPM"), ("sad/s1/d.png", "PNG"),
                     ("sad/s2/e.TIFF", "TIFF"), ("contempt/f.jpg", "JPEG"), ("loose.png", "PNG")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        face.save(root / rel, fmt)
    (root / "sad" / "notes.txt").write_text("x")
    (root / "happy" / ".DS_Store").write_bytes(b"x")
    left_out = Counter()
    with caplog.at_level(logging.WARNING, logger="training.datasets"):
        rows = load_dataset(f"imagefolder:{root}", left_out)
    assert [(names([e])[0], e.image[len(str(root)) + 1:], e.group) for e in rows] == [
        ("joy", "happy/a.tif", "a.tif"), ("joy", "happy/b.gif", "b.gif"), ("sadness", "sad/s1/c.pgm", "s1"),
        ("sadness", "sad/s1/d.png", "s1"), ("sadness", "sad/s2/e.TIFF", "s2")]
    assert left_out == {"contempt": 1}
    assert "2 files left out: not an image Pillow reads (.txt 1); 1 outside a label folder (.png 1)" in caplog.text
    assert all(features.face_image(e).shape == (8, 8, 3) for e in rows)


def test_an_image_folder_without_images_says_what_it_found(tmp_path):
    """No image in the label folders, or label folders one level down (Kaggle's train/ and test/), stop with what was
    found and what to give, not 'no row has a label (0 rows)' at the end."""
    (tmp_path / "notes" / "happy").mkdir(parents=True)
    (tmp_path / "notes" / "happy" / "a.txt").write_text("x")
    with pytest.raises(DataError, match=r"no image in .*notes's label folders \(seen: 1 folders; files \.txt 1\)"):
        load_dataset(f"imagefolder:{tmp_path / 'notes'}")
    for split in ("train", "test"):
        (tmp_path / "kaggle" / split / "angry").mkdir(parents=True)
        Image.new("L", (8, 8)).save(tmp_path / "kaggle" / split / "angry" / "a.png")
    with pytest.raises(DataError, match=r"its folders test, train hold the label folders .*imagefolder:.*kaggle/test"):
        load_dataset(f"imagefolder:{tmp_path / 'kaggle'}")
    assert names(load_dataset(f"imagefolder:{tmp_path / 'kaggle' / 'train'}")) == ["anger"]


# --- 4. unreadable rows: their row in the file, and why

def test_unreadable_rows_are_named_by_their_row_in_the_file_and_why(tmp_path, stand_in, caplog):
    """Rows 0-2 are labelled contempt (left out), row 4 has no image, row 6 names a file that is not there, row 7 is
    not an image: the rows reported are 4, 6, 7, as the file numbers them, with why. Before 2026-12-06 they were
    1, 3, 4 (places after the contempt rows were left out), and the reason a TypeError."""
    cells = [{"bytes": png(), "path": None}] * 9  # Hugging Face's {bytes, path} image cells
    cells[4], cells[6], cells[7] = None, {"bytes": None, "path": "gone.png"}, {"bytes": b"not an image", "path": None}
    labels = ["contempt"] * 3 + ["joy", "sad", "anger", "fear", "surprise", "neutral"]
    pq.write_table(pa.table({"image": cells, "label": labels}), tmp_path / "faces.parquet")
    with caplog.at_level(logging.WARNING, logger="training.features"):
        rows, unreadable = stand_in(f"faces:{tmp_path / 'faces.parquet'}")
    assert unreadable == [4, 6, 7] and [e.row for e in rows] == [3, 5, 8]
    assert "row 4: no image in this row; left out" in caplog.text
    assert f"row 6: file {tmp_path / 'gone.png'} not found; left out" in caplog.text
    assert "row 7: its media cannot be read (UnidentifiedImageError" in caplog.text
    assert "3 of 6 rows could not be read and are left out (rows 4, 6, 7)" in caplog.text


def test_an_image_folder_file_gone_since_listing_is_named(tmp_path, stand_in, caplog):
    for name in ("a.png", "b.png"):
        (tmp_path / "happy").mkdir(exist_ok=True)
        Image.new("L", (8, 8)).save(tmp_path / "happy" / name)
    [first, second] = load_dataset(f"imagefolder:{tmp_path}")
    (tmp_path / "happy" / "b.png").unlink()
    with pytest.raises(features.NoMedia, match=f"file {second.image} not found"):
        features.face_image(second)
    assert features.face_image(first).shape == (8, 8, 3)


# --- 5. spoken: rows with no line

def test_spoken_rows_without_a_line_are_counted_and_a_set_with_none_stops(tmp_path, stand_in, caplog):
    """A speech set whose transcripts cover half its rows, and no RAVDESS / TESS file names: the other half is left
    out, counted and said; a set with no line at all stops saying so. Before 2026-12-06 both were silent (the second
    ended with 'no row has a label (0 rows)')."""
    sound = wav(np.sin(np.arange(8000) / 5.0) * 0.3)
    pq.write_table(pa.table({"audio": [sound] * 4, "label": ["joy", "anger", "sad", "fear"],
                             "text": ["Yes!", None, "No.", ""]}), tmp_path / "half.parquet")
    skipped = Counter()
    with caplog.at_level(logging.WARNING, logger="training.datasets"):
        rows = load_dataset(f"spoken:{tmp_path / 'half.parquet'}", skipped=skipped)
    assert [(e.text, e.row) for e in rows] == [("Yes!", 0), ("No.", 2)] and skipped == {NO_LINE: 2}
    assert "2 of 4 rows left out: 2 no line known (give a `text` column" in caplog.text
    pq.write_table(pa.table({"audio": [sound] * 2, "label": ["joy", "anger"], "path": ["a.wav", "b.wav"]}),
                   tmp_path / "none.parquet")
    assert load_dataset(f"spoken:{tmp_path / 'none.parquet'}") == []
    with pytest.raises(DataError, match=r"none.parquet: no row has a line \(2 rows without one\): give the set a "
                                        r"`text` column"):
        stand_in(f"spoken:{tmp_path / 'none.parquet'}")


# --- 6. Hugging Face ClassLabel labels and float labels

def test_hugging_face_class_labels_are_read_by_their_names(tmp_path):
    """A Hugging Face datasets file's integer labels are read through the ClassLabel names in its schema's metadata
    (-1: no label); before 2026-12-06 they were refused as numbers. Float labels (6.0) get the numbers hint."""
    hf = {"info": {"features": {"image": {"_type": "Image"},
                                "label": {"_type": "ClassLabel", "names": ["angry", "happy", "contempt", "Sad"]}}}}
    table = pa.table({"image": [png()] * 5, "label": [1, 0, 3, 2, -1]})
    pq.write_table(table.replace_schema_metadata({b"huggingface": json.dumps(hf).encode()}), tmp_path / "hf.parquet")
    left_out = Counter()
    assert names(load_dataset(f"faces:{tmp_path / 'hf.parquet'}", left_out)) == ["joy", "anger", "sadness", None]
    assert left_out == {"contempt": 1}
    # its `emotion` column too (read as `label`), and a branch trainer's reader
    meta = {"info": {"features": {"emotion": hf["info"]["features"]["label"]}}}
    pq.write_table(pa.table({"image": [png()] * 2, "emotion": [1, 3]}).replace_schema_metadata(
        {b"huggingface": json.dumps(meta).encode()}), tmp_path / "emotion.parquet")
    assert names(load_dataset(f"faces:{tmp_path / 'emotion.parquet'}")) == ["joy", "sadness"]
    from training.face_classifier import read_labels
    assert list(read_labels(tmp_path / "emotion.parquet")[0]) == [EMOTIONS.index("joy"), EMOTIONS.index("sadness")]
    # without the metadata numbers stay numbers: refused with the hint, floats as integers
    for labels in ([0, 3], [0.0, 3.0]):
        pq.write_table(pa.table({"image": [png()] * 2, "label": labels}), tmp_path / "n.parquet")
        with pytest.raises(DataError, match="The labels are numbers: write them as names"):
            load_dataset(f"faces:{tmp_path / 'n.parquet'}")


# --- 7. a folder of Parquet shards

def test_a_folder_of_parquet_shards_is_read_as_one_set(tmp_path, caplog):
    """data/part-*.parquet as Spark and Hugging Face write them: the folder's .parquet files in name order (Spark's
    _SUCCESS and .crc files aside), media paths relative to the folder. Refused before 2026-12-06."""
    shards = tmp_path / "data"
    shards.mkdir()
    (shards / "face.png").write_bytes(png(7))
    cells = [{"bytes": png(1), "path": None}, {"bytes": png(2), "path": None}]
    pq.write_table(pa.table({"image": cells, "label": ["joy", "sad"]}), shards / "part-00001.parquet")
    pq.write_table(pa.table({"image": [{"bytes": None, "path": "face.png"}], "label": ["anger"]}),
                   shards / "part-00000.parquet")
    (shards / "_SUCCESS").write_text("")
    (shards / ".part-00000.parquet.crc").write_bytes(b"x")
    rows = load_dataset(f"faces:{shards}")
    assert names(rows) == ["anger", "joy", "sadness"] and [e.data for e in rows] == [png(7), png(1), png(2)]
    assert [e.row for e in rows] == [0, 1, 2]
    pq.write_table(pa.table({"image": [{"bytes": png(3), "path": None}], "label": ["fear"]}), shards / "test-0.parquet")
    with caplog.at_level(logging.WARNING, logger="training.datasets"):
        assert len(load_dataset(f"faces:{shards}")) == 4
    assert "their names start differently (part, test)" in caplog.text
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .parquet file in the folder"):
        load_dataset(f"faces:{tmp_path / 'empty'}")


# --- 8. '@N' draws from the labelled rows

def test_a_sample_draws_n_of_the_labelled_rows(tmp_path):
    """'@N' gives N labelled rows where the set has rows without a label (null) too; before 2026-12-06 the nulls
    were drawn as well. A set without nulls draws the same rows as before."""
    labels = [None if i % 3 == 0 else EMOTIONS[i % 7] for i in range(30)]
    pq.write_table(pa.table({"image": [png()] * 30, "label": labels}), tmp_path / "nulls.parquet")
    rows = load_dataset(f"faces:{tmp_path / 'nulls.parquet'}@10")
    assert len(rows) == 10 and all(e.label >= 0 for e in rows) and [e.row for e in rows] == sorted(e.row for e in rows)
    assert len(load_dataset(f"faces:{tmp_path / 'nulls.parquet'}@25")) == 30  # no more labelled rows than asked: all
    pq.write_table(pa.table({"image": [png()] * 30, "label": [EMOTIONS[i % 7] for i in range(30)]}),
                   tmp_path / "full.parquet")
    before = sorted(random.Random(7).sample(range(30), 10))  # SAMPLE_SEED over every row, as it always was
    assert [e.row for e in load_dataset(f"faces:{tmp_path / 'full.parquet'}@10")] == before


# --- 9. a sound of no samples, a clip with nothing decoded and no line

def test_a_sound_of_no_samples_is_unreadable_and_silence_is_said(tmp_path, stand_in, caplog):
    """Rows 0-1: a WAV of 0 samples, unreadable; row 2: silence, kept (a run scores such a clip from the head alone,
    and a pipeline-path score counts the speech gate's misses) and said; the rest speak. Before 2026-12-06 the
    empty sounds were scored from no input and counted in n, and nothing was said."""
    speech = wav(np.sin(np.arange(16000) / 5.0) * 0.3)
    pq.write_table(pa.table({"audio": [wav(np.zeros(0)), wav(np.zeros(0)), wav(np.zeros(16000)), speech, speech],
                             "label": ["joy", "anger", "sad", "fear", "neutral"]}), tmp_path / "audio.parquet")
    for _ in range(2):  # computed, then from the cache
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="training.features"):
            rows, unreadable = stand_in(f"audio:{tmp_path / 'audio.parquet'}")
        assert unreadable == [0, 1] and [e.row for e in rows] == [2, 3, 4]
        assert "1 of 3 rows give the head nothing to read (no speech heard, no face, no line read)" in caplog.text
        assert "(rows 2)" in caplog.text
    with pytest.raises(features.NoMedia, match="the sound has no samples"):
        features.media_tokens(Example(label=0, data=wav(np.zeros(0)), source="audio"), StandInFeaturizer(None))
    pq.write_table(pa.table({"audio": [wav(np.zeros(0))], "label": ["joy"]}), tmp_path / "empty.parquet")
    with pytest.raises(DataError, match="none of its 1 rows could be read"):
        stand_in(f"audio:{tmp_path / 'empty.parquet'}")


def test_a_clip_that_does_not_decode_and_has_no_line_is_unreadable(tmp_path, stand_in, caplog):
    """A clip manifest's clip whose film is not there keeps its line; without one it is unreadable, saying why
    (before 2026-12-06 it was scored from no input)."""
    (tmp_path / "m.csv").write_text("video,start,end,label,text\ngone.mp4,0,2,joy,I'm so glad.\ngone.mp4,2,4,anger,\n")
    with caplog.at_level(logging.WARNING, logger="training.features"):
        rows, unreadable = stand_in(f"clips:{tmp_path / 'm.csv'}", text_languages=())
    assert [e.text for e in rows] == ["I'm so glad."] and unreadable == [1]
    assert f"row 1: {tmp_path / 'gone.mp4'} [2.00, 4.00) not decoded (" in caplog.text
    assert "and no line read; left out" in caplog.text


# --- 10. paths with '#' or '@' in them

def test_a_path_with_hash_or_at_in_it_is_read_as_written(tmp_path):
    """A folder 'take#2' and a file 'faces@2x.parquet' are read as named, with or without suffixes after them;
    before 2026-12-06 '#2' and '@2x.parquet' were read as suffixes and refused."""
    (tmp_path / "take#2").mkdir()
    for path in (tmp_path / "take#2" / "dev.parquet", tmp_path / "faces@2x.parquet"):
        pq.write_table(pa.table({"image": [png()] * 5, "label": ["joy"] * 5}), path)
        assert spec_parts(f"faces:{path}")[1:] == (path, "", None)
        assert spec_parts(f"faces:{path}@3#dev")[1:] == (path, "dev", 3)
        assert len(load_dataset(f"faces:{path}")) == 5 and len(load_dataset(f"faces:{path}@3")) == 3
    assert spec_parts(f"faces:{tmp_path}/dev.parquet@10#train")[1:] == (tmp_path / "dev.parquet", "train", 10)
    with pytest.raises(ValueError, match="split suffix must be #train or #dev"):
        spec_parts(f"faces:{tmp_path}/dev.parquet#test")
    with pytest.raises(ValueError, match="sample suffix must be @N"):
        spec_parts(f"faces:{tmp_path}/missing@2x.parquet")


# --- 11. a clip manifest's clips decode as their run decoded them

def test_a_manifest_clip_of_a_film_planned_as_it_played_takes_the_runs_frames(tmp_path, monkeypatch):
    """A manifest made from a run's clips table (the natural way to label clips) of a shot-cut film, or of one whose
    clips speech recognition planned: the run took each clip's frames from its grid, and before 2026-12-07 training,
    evaluate and calibrate decoded the clip's own sample times (10 of 16 Sintel shot clips' vision tokens differed,
    one label changed: found in review). The manifest's `segment_source` column says so, as the clips table's does;
    a film without a `shot` or `asr` row decodes its own times, as its run did."""
    from tests.scoring_support import SINTEL
    from transforms.decode import DecodeConfig, decode_film
    from transforms.elements import DecodedClip
    if not SINTEL.is_file():
        pytest.skip("the Sintel trailer is not in ../shared")
    size = 32
    run = [c for c in decode_film(_job(SINTEL), DecodeConfig(segment="shot", image_size=size))
           if isinstance(c, DecodedClip)][3:6]
    lines = ["video,start,end,label,segment_source"] + [f"{SINTEL},{c.spec.start_s!r},{c.spec.end_s!r},joy,shot"
                                                         for c in run]
    (tmp_path / "shots.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "plain.csv").write_text("\n".join(lines).replace(",shot", ",window") + "\n")
    seen = []

    class Recording(StandInFeaturizer):
        def clip(self, clip):
            seen.append(clip.frames)
            return super().clip(clip)

    monkeypatch.setattr(features, "Featurizer", Recording)
    encoders = SimpleNamespace(spec=SimpleNamespace(image_size=size))
    shots = load_dataset(f"clips:{tmp_path / 'shots.csv'}")
    assert all(e.on_grid for e in shots) and not any(e.on_grid for e in load_dataset(f"clips:{tmp_path / 'plain.csv'}"))
    for e, c in zip(shots, run):
        features.clip_tokens(e, Recording(encoders), ("vision",))
        assert np.array_equal(seen[-1], c.frames), c.spec
    moved = 0
    for e, c in zip(load_dataset(f"clips:{tmp_path / 'plain.csv'}"), run):
        features.clip_tokens(e, Recording(encoders), ("vision",))
        moved += not np.array_equal(seen[-1], c.frames)
    assert moved  # the check means something: the clips' own times are not the grid's
    assert features.rows_digest(shots) != features.rows_digest(load_dataset(f"clips:{tmp_path / 'plain.csv'}"))
    # one film however its rows spell it: a row naming it through a link, relative to the manifest, is on the grid too
    (tmp_path / "link.mp4").symlink_to(SINTEL)
    (tmp_path / "spelt.csv").write_text("\n".join(lines[:2] + ["link.mp4,1.0,3.0,joy,window"]) + "\n")
    assert [e.on_grid for e in load_dataset(f"clips:{tmp_path / 'spelt.csv'}")] == [True, True]


def _job(path):
    from transforms.discover import film_id_for
    from transforms.elements import FilmJob, FilmRef
    from transforms.probe import probe_film
    return FilmJob(ref=FilmRef(path=str(path), size_bytes=0, film_id=film_id_for(str(path))), info=probe_film(str(path)),
                   cues=(), needs_asr=False, config_hash="")
