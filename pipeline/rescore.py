"""Re-score a catalogue from its features table with another head, without decoding a frame.

    python -m pipeline.rescore --features out/features --head new_head.pt --output out2/ [--clips out/clips]
        [--device cpu|cuda] [--batch_size 64] [Beam options: --runner ... --setup_file ./setup.py]

The head must read the encoders the features came from (a head can carry fine-tuned text and face layers):
the encoder version it implies is checked against the features table's before anything runs.

A Beam pipeline: features/<film_id>.parquet -> head (the same RunInference handler as the main pipeline)
-> per film, the original clips table with its score columns and model_version replaced ->
<output>/clips/<film_id>.parquet, and that film's failures -> <output>/errors/<run_id>/<film_id>.parquet, each
committed atomically as soon as the film is done (transforms/write.py).
With the same head it reproduces the original labels: the features table keeps the full token sequences.
"""
from __future__ import annotations

import argparse
import io
import logging
import posixpath
import uuid
from datetime import datetime, timezone
from collections import Counter
from typing import Iterable, Optional, Sequence

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions

from model.encoders import EncoderSpec, encoder_version
from model.encoders.versions import TEXT_LANGUAGES
from model.featurize import MODALITIES, Failure, parse_modalities, select_modalities
from pipeline.arg_types import head_path_arg, io_path, modalities_arg, model_path_arg
from pipeline.options import offline_direct_runner
from schemas import clips as clips_schema
from schemas import errors as errors_schema
from schemas import rows_to_table
from transforms.elements import FilmError, FilmRef
from transforms.film import unread_lines_warning
from transforms.fuse import tokens_from_row
from transforms.head_inference import FuseClips
from transforms.language import parse_text_languages, unread_language
from transforms.write import atomic_write_table, error_row, output_pattern, read_table

LOG = logging.getLogger(__name__)
SCORE_COLUMNS = [f.name for f in clips_schema.SCORE_FIELDS] + ["n_faces"]


def parse_args(argv=None) -> tuple[argparse.Namespace, list[str]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", required=True, type=io_path, help="features table folder (features/*.parquet)")
    ap.add_argument("--head", default=None, type=head_path_arg, help="head checkpoint (default: the shipped head)")
    ap.add_argument("--output", required=True, type=io_path,
                    help="output root: clips/ and errors/ are written under it")
    ap.add_argument("--clips", default=None, type=io_path, help="original clips tables (default: <features>/../clips)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--torch_threads", type=int, default=1)
    ap.add_argument("--accelerator", default=None, help="Beam accelerator resource hint for the head step")
    ap.add_argument("--run_id", default=None)
    ap.add_argument("--text_model", default=None, type=model_path_arg,
                    help="as the run that wrote the features (default: packaged)")
    ap.add_argument("--vision_model", default=None, type=model_path_arg,
                    help="as the run that wrote the features (default: packaged)")
    ap.add_argument("--image_size", type=int, default=224, help="as the run that wrote the features")
    ap.add_argument("--modalities", default=None, type=modalities_arg,
                    help="comma list of text, vision, face, audio: the head sees only these (default: all)")
    ap.add_argument("--text_languages", default=",".join(TEXT_LANGUAGES),
                    help="read only lines in these languages, as pipeline.run (default: the languages the head's "
                         "text path learnt; 'any': every line). Decided from the clips table's language column, "
                         "so features written before lines were identified are scored as a run would now score them")
    ap.add_argument("--no_encoder_check", action="store_true",
                    help="skip the check that the head reads the encoders the features came from")
    return ap.parse_known_args(argv)


def check_encoders(args: argparse.Namespace, recorded: str) -> None:
    """A head reads the tokens of the encoders it was trained with, and a head can carry fine-tuned text
    and face encoder layers: features made by other encoders would be scored without any error, wrongly.
    So the encoder version this head implies must equal the one recorded in the features table."""
    expected = encoder_version(EncoderSpec(head=args.head, text_model=args.text_model,
                                           vision_model=args.vision_model, image_size=args.image_size))
    if expected != recorded:
        raise SystemExit(
            f"{args.features}: the features were computed by encoders {recorded}, but this head reads encoders "
            f"{expected} (its fine-tuned text/face layers, or --text_model/--vision_model/--image_size, differ). "
            "Run pipeline.run with this head instead, pass the encoder options the features were made with, "
            "or --no_encoder_check to score anyway.")


def features_files(features_dir: str) -> tuple[dict[str, set[str]], dict[str, Exception]]:
    """({path: the encoder versions it records}, {path that cannot be read: why}) for a features table: each file is
    read once, for that column only. A file that is not a readable features table (damaged, cut short) is left out
    with a warning: its film is not rescored."""
    paths = [m.path for r in FileSystems.match([output_pattern(features_dir, "*.parquet")]) for m in r.metadata_list]
    readable, unreadable = {}, {}
    for p in paths:
        try:
            with FileSystems.open(p) as f:
                readable[p] = set(pq.read_table(io.BytesIO(f.read()), columns=["encoder_version"]).column(0).to_pylist())
        except Exception as exc:  # noqa: BLE001 - one damaged file is that film's error row, not the run's end
            LOG.warning("%s: not a readable features table (%s); its film is not rescored", p, exc)
            unreadable[p] = exc
    return readable, unreadable


def write_unreadable(unreadable: dict[str, Exception], output: str, run_id: str) -> None:
    """A fatal `rescore` error row for the film of each features file that cannot be read (named by the file)."""
    for path, exc in unreadable.items():
        film_id = posixpath.splitext(posixpath.basename(path))[0]
        error = FilmError(film_path=path, stage="rescore", error_type=type(exc).__name__,
                          message=f"the features file cannot be read: {exc}", film_id=film_id, fatal=True)
        atomic_write_table(rows_to_table([error_row(error, run_id)], errors_schema.SCHEMA),
                           FileSystems.join(output, "errors", run_id, f"{film_id}.parquet"))


def read_features(path: str, modalities=MODALITIES, clips_dir: Optional[str] = None,
                  text_languages: Sequence[str] = ()) -> Iterable:
    """One features file -> ((film_id, clip_index), (tokens of the chosen modalities, film_path)) per clip. A
    clip whose line the text path does not read (its language in the film's clips table) loses its text tokens,
    as pipeline.run's scorer never makes them."""
    rows = read_table(path).to_pylist()
    unread = unread_clips(clips_dir, rows[0]["film_id"], text_languages) if rows and clips_dir else {}
    without_text = [m for m in modalities if m != "text"]
    for row in rows:
        tokens = select_modalities(tokens_from_row(row), without_text if row["clip_index"] in unread else modalities)
        yield (row["film_id"], row["clip_index"]), (tokens, row["film_path"])


def unread_clips(clips_dir: str, film_id: str, text_languages: Sequence[str]) -> dict[int, str]:
    """{clip_index: language} of a film's clips whose line the text path does not read (transforms.language);
    empty when every language is read or the film has no clips table (its write then records the error)."""
    if not text_languages:
        return {}
    try:
        table = read_table(FileSystems.join(clips_dir, f"{film_id}.parquet"))
    except Exception:  # noqa: BLE001 - WriteRescoredFilm reads it again and records why it failed
        return {}
    return unread_rows(table.select(["clip_index", "text", "language"]).to_pylist(), text_languages)


def unread_rows(rows: Iterable[dict], text_languages: Sequence[str]) -> dict[int, str]:
    """{clip_index: language} of the clips-table rows whose line the text path does not read."""
    found = ((r["clip_index"], unread_language(r["text"], r["language"], text_languages)) for r in rows)
    return {i: lang for i, lang in found if lang}


class WriteRescoredFilm(beam.DoFn):
    """(film_id, [(clip_index, (film_path, scores | Failure))]) -> the film's new clips table and its error rows,
    both committed at once (deterministic names: a retried bundle rewrites the same files)."""

    def __init__(self, clips_dir: str, output: str, run_id: str, text_languages: Sequence[str] = ()):
        self.clips_dir, self.output, self.run_id, self.text_languages = clips_dir, output, run_id, text_languages

    def process(self, grouped):
        film_id, items = grouped
        items = dict(items)
        film_path = next(iter(items.values()))[0]
        errors = [FilmError(film_path=film_path, film_id=film_id, clip_index=i, stage=r.modality,
                            error_type=r.error_type, message=r.message, fatal=False)
                  for i, (_, r) in items.items() if isinstance(r, Failure)]
        try:
            old = read_table(FileSystems.join(self.clips_dir, f"{film_id}.parquet")).to_pylist()
            rows = []
            for row in old:
                _, res = items.get(row["clip_index"], (None, None))
                new = {c: None for c in SCORE_COLUMNS if c != "n_faces"}
                if isinstance(res, dict):
                    new.update(res)
                rows.append({**row, **new, "run_id": self.run_id})
            unread = Counter(unread_rows(old, self.text_languages).values())
            if unread:
                errors.append(unread_lines_warning(FilmRef(film_path, 0, film_id, ""), unread, len(old),
                                                   self.text_languages))
            atomic_write_table(rows_to_table(rows, clips_schema.SCHEMA),
                               FileSystems.join(self.output, "clips", f"{film_id}.parquet"))
            beam.metrics.Metrics.counter("film_emotion", "films_rescored").inc()
        except Exception as e:  # noqa: BLE001 - one film's failure is a row, not a crash
            LOG.exception("rescore write failed for %s", film_id)
            errors.append(FilmError(film_path=film_path, film_id=film_id, stage="write",
                                    error_type=type(e).__name__, message=str(e) or repr(e)))
        if errors:
            atomic_write_table(rows_to_table([error_row(e, self.run_id) for e in errors], errors_schema.SCHEMA),
                               FileSystems.join(self.output, "errors", self.run_id, f"{film_id}.parquet"))
        yield film_id


def build_rescore(p: beam.Pipeline, args: argparse.Namespace, model_version: str, paths: Sequence[str]
                  ) -> beam.PCollection:
    """paths: the features files to rescore (features_files' readable ones)."""
    clips_dir = args.clips or posixpath.join(posixpath.dirname(args.features.rstrip("/")), "clips")
    modalities = parse_modalities(args.modalities)
    languages = parse_text_languages(args.text_languages) if "text" in modalities else ()
    return (p
            | "FeaturesFiles" >> beam.Create(list(paths))
            | "Reshuffle" >> beam.Reshuffle()
            | "ReadFeatures" >> beam.FlatMap(read_features, modalities, clips_dir, languages)
            | "Head" >> FuseClips(args.head, model_version, device=args.device, batch_size=args.batch_size,
                                  torch_threads=args.torch_threads, accelerator=args.accelerator)
            | "ByFilm" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[1])))
            | "GroupByFilm" >> beam.GroupByKey()
            | "WriteClips" >> beam.ParDo(WriteRescoredFilm(clips_dir, args.output, args.run_id, languages)))


def run(argv: Optional[list[str]] = None, save_main_session: bool = True) -> dict:
    from model.checkpoints import model_version
    args, beam_args = parse_args(argv)
    args.run_id = args.run_id or datetime.now(timezone.utc).strftime("rescore-%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:6]
    readable, unreadable = features_files(args.features)
    versions = set().union(*readable.values())
    if not versions:
        raise SystemExit(f"pipeline.rescore: no features table in {args.features} (a pipeline.run --output's "
                         "features/ folder, written with --write_features)")
    if len(versions) != 1:
        raise SystemExit(f"{args.features}: expected one encoder_version in the features table, found {versions}")
    recorded = versions.pop()
    if not args.no_encoder_check:
        check_encoders(args, recorded)
    version = model_version(args.head, recorded, parse_modalities(args.modalities),
                            parse_text_languages(args.text_languages))
    opts = PipelineOptions(beam_args)
    opts.view_as(SetupOptions).save_main_session = save_main_session
    write_unreadable(unreadable, args.output, args.run_id)
    with beam.Pipeline(runner=offline_direct_runner(opts.view_as(StandardOptions).runner), options=opts) as p:
        build_rescore(p, args, version, list(readable))
    LOG.info("rescored %s with %s -> %s", args.features, version, args.output)
    return {"run_id": args.run_id, "model_version": version, "output": args.output, "unreadable": list(unreadable)}


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    print(run())
