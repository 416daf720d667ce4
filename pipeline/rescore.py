"""Re-score a catalogue from its features table with another head, without decoding a frame.

    python -m pipeline.rescore --features out/features --head new_head.pt --output out2/ [--clips out/clips]
        [--device cpu|cuda] [--batch_size 64] [Beam options: --runner ... --setup_file ./setup.py]

The head must read the encoders the features came from (a head can carry fine-tuned text and face layers):
the encoder version it implies is checked against each film's features (a film from other encoders is refused; the
rescore stops before anything runs only when no film's features are this head's).

A Beam pipeline: features/<film_id>.parquet -> head (the same RunInference handler as the main pipeline)
-> per film, the original clips table with its score columns and model_version replaced ->
<output>/clips/<film_id>.parquet, and that film's failures -> <output>/errors/<run_id>/<film_id>.parquet, each
committed atomically as soon as the film is done (transforms/write.py). Before any film, the run's plan:
<output>/rescore_plan/<run_id>.parquet (schemas.rescore_plan), so a report tells the films a stopped rescore never
reached.
With the same head it reproduces the original labels: the features table keeps the full token sequences.

A film whose features cannot give what pipeline.run would score is refused: one fatal `rescore` error row and no
clips file (its features file cannot be read whole or holds damaged tokens or another encoder version's, its clips
and features rows are not the same clips, it has a clips table and no features file, a modality scored was not encoded
for it, a line read now was not read then, the languages read could choose another subtitle source or the speech
transcribed, or its frames are scored from a features schema 1.0 table, which holds no scene tokens). A
modality that no film's features hold stops the rescore before anything runs, and so does an --output that is the
features' own output folder (its clips would be replaced in place).
"""
from __future__ import annotations

import argparse
import io
import logging
import os
import posixpath
import uuid
from datetime import datetime, timezone
from collections import Counter
from typing import Iterable, Mapping, Optional, Sequence

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions

from model.encoders import EncoderSpec, encoder_version
from model.encoders.versions import TEXT_LANGUAGES, is_url
from model.featurize import MODALITIES, Failure, parse_modalities, select_modalities
from pipeline.arg_types import head_path_arg, io_path, modalities_arg, model_path_arg, positive_int
from pipeline.options import cuda_problem, offline_direct_runner, other_runner_options, run_id_problem
from schemas import clips as clips_schema
from schemas import errors as errors_schema
from schemas import rescore_plan
from schemas import rows_to_table
from transforms.elements import FilmError, FilmRef
from transforms.film import unread_lines_warning
from transforms.fuse import row_token_problem, tokens_from_row
from transforms.head_inference import FuseClips
from transforms.language import parse_text_languages, unread_language
from transforms.write import (atomic_write_table, delete_files, error_row, match_files, output_pattern,
                              read_table)

LOG = logging.getLogger(__name__)
SCORE_COLUMNS = [f.name for f in clips_schema.SCORE_FIELDS] + ["n_faces"]


def parse_args(argv=None) -> tuple[argparse.Namespace, list[str]]:
    ap = argparse.ArgumentParser(prog="python -m pipeline.rescore", description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", required=True, type=io_path, help="features table folder (features/*.parquet)")
    ap.add_argument("--head", default=None, type=head_path_arg, help="head checkpoint (default: the shipped head)")
    ap.add_argument("--output", required=True, type=io_path,
                    help="output root: clips/ and errors/ are written under it")
    ap.add_argument("--clips", default=None, type=io_path, help="original clips tables (default: <features>/../clips)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch_size", type=positive_int, default=64, help="clips per head batch (at least 1)")
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
                         "so features written before lines were identified are scored as a run would now score them; "
                         "a film whose run read languages that could pick another subtitle source is refused")
    ap.add_argument("--no_encoder_check", action="store_true",
                    help="skip the check that the head reads the encoders the features came from")
    args, beam_args = ap.parse_known_args(argv)
    if run_id_problem(args.run_id):  # (its errors/<run_id>/ folder, as pipeline.run's)
        ap.error(run_id_problem(args.run_id))
    try:  # (before 2026-12-07 a ValueError traceback, after every features file had been read)
        parse_text_languages(args.text_languages)
    except ValueError as exc:
        ap.error(str(exc))
    same = output_is_features_output(args)
    if same:
        ap.error(f"--output {args.output} is the output the features were written to ({same}), or another "
                 "pipeline.run's: a rescore there would replace its clips in place under its manifest; write to "
                 "another folder")
    return args, beam_args


def output_is_features_output(args: argparse.Namespace) -> Optional[str]:
    """The output folder the features (or the --clips read) belong to when --output is that very folder (the same
    real path: a local folder's parent is taken after its links are followed), or --output is any pipeline.run's
    output (a manifest/ folder), else None. Before 2026-12-06 a rescore there replaced the run's clips in place
    while its manifest kept the old model_version, and the run's next night deleted the rescore's errors/ rows as
    uncommitted; before 2026-12-07 a features folder reached through a link, or another run's output of the same
    films, was let through (its next night then skipped every film as done, with the rescore's labels)."""
    for folder in (args.features, clips_folder(args)):
        folder = folder.rstrip("/")
        parent = posixpath.dirname(folder if is_url(folder) else os.path.realpath(folder))
        if parent and same_place(args.output, parent):
            return parent
        if inside(args.output, folder):  # its tables would be read with the run's (before 2026-12-07 let through)
            return f"{folder}: --output is inside that table's folder"
    manifest = posixpath.join(args.output.rstrip("/"), "manifest")
    if not is_url(args.output) and os.path.isdir(manifest) and os.listdir(manifest):
        return f"{args.output}: a pipeline.run output (its manifest/ is there)"
    return None


def inside(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or below it: local paths by their real paths, URLs as written."""
    if is_url(path) or is_url(folder):
        return (path.rstrip("/") + "/").startswith(folder.rstrip("/") + "/")
    real, top = os.path.realpath(path), os.path.realpath(folder)
    return real == top or real.startswith(top.rstrip("/") + "/")


def same_place(a: str, b: str) -> bool:
    """Whether two paths name one folder: local ones by their real paths (links, '..'), URLs as written."""
    if is_url(a) or is_url(b):
        return a.rstrip("/") == b.rstrip("/")
    return os.path.realpath(a) == os.path.realpath(b)


def head_encoder_version(args: argparse.Namespace) -> str:
    """The encoder version this head and the encoder options imply (what pipeline.run with them records)."""
    return encoder_version(EncoderSpec(head=args.head, text_model=args.text_model, vision_model=args.vision_model,
                                       image_size=args.image_size))


def check_encoders(args: argparse.Namespace, expected: str, recorded: Iterable[set[str]]) -> None:
    """A head reads the tokens of the encoders it was trained with, and a head can carry fine-tuned text
    and face encoder layers: features made by other encoders would be scored without any error, wrongly.
    Each film whose features record another version is refused (ReadFilm); when no film's features are this head's
    encoders, stop before anything runs. recorded: each features file's encoder versions."""
    recorded = list(recorded)
    if any(versions == {expected} for versions in recorded):
        return
    found = ", ".join(sorted(set().union(*recorded)))
    raise SystemExit(
        f"{args.features}: the features were computed by encoders {found}, but this head reads encoders "
        f"{expected} (its fine-tuned text/face layers, the speech/scene classifiers it carries, or "
        "--text_model/--vision_model/--image_size differ), and no film's features are this head's. "
        "Run pipeline.run with this head instead, pass the encoder options the features were made with, "
        "or --no_encoder_check to score anyway.")


def single_encoder_version(args: argparse.Namespace, files: dict[str, set[str]]) -> str:
    """--no_encoder_check: the one encoder version the features record (it goes into the model_version); features
    of several versions stop the rescore, naming a film of each (one model_version cannot name them all)."""
    versions = sorted(set().union(*files.values()))
    if len(versions) == 1:
        return versions[0]
    films = {v: next(film_of(p) for p, vs in files.items() if v in vs) for v in versions}
    raise SystemExit(f"{args.features}: --no_encoder_check scores the features as they are, but they hold "
                     f"{len(versions)} encoder versions (" + "; ".join(f"{v}: {f}, ..." for v, f in films.items())
                     + "): rescore the films of one version, or drop --no_encoder_check to refuse the others")


def encoders_problem(feats: Sequence[dict], expected: Optional[str]) -> Optional[str]:
    """Why a film's features cannot be scored by this head (another encoder version), None where they can or the
    check is off (expected None: --no_encoder_check). Before 2026-12-07 one such film stopped the whole rescore
    with a message naming no film."""
    other = sorted({f["encoder_version"] for f in feats} - {expected}) if expected else []
    if not other:
        return None
    return (f"its features were computed by encoders {', '.join(other)}, but this head reads encoders {expected}: "
            "run pipeline.run for it with this head (or rescore it with the encoder options its features were made "
            "with)")


def features_files(features_dir: str) -> tuple[dict[str, tuple[set[str], set[str]]], dict[str, Exception]]:
    """({path: (the encoder versions it records, the modalities it holds encoded)}, {path that cannot be read: why})
    for a features table: each file is read once, for those columns only. A file that is not a readable features table
    (damaged, cut short) is left out with a warning: its film is not rescored."""
    paths = [m.path for r in FileSystems.match([output_pattern(features_dir, "*.parquet")]) for m in r.metadata_list]
    columns = ["encoder_version"] + [f"{m}_dim" for m in MODALITIES]
    readable, unreadable = {}, {}
    for p in paths:
        try:
            with FileSystems.open(p) as f:
                table = pq.read_table(io.BytesIO(f.read()), columns=columns)
            readable[p] = set(table.column("encoder_version").to_pylist()), held_modalities(table)
        except Exception as exc:  # noqa: BLE001 - one damaged file is that film's error row, not the run's end
            LOG.warning("%s: not a readable features table (%s); its film is not rescored", p, exc)
            unreadable[p] = exc
    return readable, unreadable


def held_modalities(table) -> set[str]:
    """The modalities encoded for some row of a features table (<m>_dim > 0: see encoded_modalities)."""
    return {m for m in MODALITIES if any(d > 0 for d in table.column(f"{m}_dim").to_pylist())}


def encoded_modalities(rows: Sequence[dict]) -> set[str]:
    """The modalities encoded for every one of these features rows: a run without one (--modalities) stores its
    <m>_dim as 0, where an encoded modality the clip lacks (no face, no line) keeps the encoder's width."""
    return {m for m in MODALITIES if rows and all(r[f"{m}_dim"] > 0 for r in rows)}


def check_modalities(args: argparse.Namespace, held: Iterable[set[str]]) -> None:
    """A modality no film's features hold would be scored as missing under a model_version that says it was read:
    stop before anything runs. (Where only some films lack it, those films are refused one by one: ReadFilm.)"""
    wanted, some = parse_modalities(args.modalities), set().union(*held)
    absent = [m for m in wanted if m not in some]
    if absent:
        have = ",".join(m for m in MODALITIES if m in some) or "none"
        raise SystemExit(f"pipeline.rescore: --modalities asks for {','.join(absent)}, but the features in "
                         f"{args.features} hold no {','.join(absent)} tokens (only {have}, as a run with --modalities "
                         f"{have} writes them); pass --modalities {have}, or score with pipeline.run")


def film_of(path: str) -> str:
    """The film id a features or clips file is named by."""
    return posixpath.splitext(posixpath.basename(path))[0]


def clips_without_features(clips_dir: str, features_paths: Iterable[str]) -> list[str]:
    """The films (ids) with a clips table and no features file: each is refused (ReadFilm), not left out unseen."""
    have = {film_of(p) for p in features_paths}
    return sorted(film_of(m.path) for m in match_files(output_pattern(clips_dir, "*.parquet"))
                  if film_of(m.path) not in have)


def write_errors(errors: Sequence[FilmError], output: str, run_id: str, film_id: str) -> None:
    """A film's error rows in this rescore: <output>/errors/<run_id>/<film_id>.parquet. A film refused (a fatal
    row) loses a clips file this run id wrote before (a rescore run again under the same --run_id): before
    2026-12-07 it read as rescored, with the earlier attempt's clips."""
    atomic_write_table(rows_to_table([error_row(e, run_id) for e in errors], errors_schema.SCHEMA),
                       FileSystems.join(output, "errors", run_id, f"{film_id}.parquet"))
    clips = FileSystems.join(output, "clips", f"{film_id}.parquet")
    if any(e.fatal for e in errors) and FileSystems.exists(clips) and run_id in _runs_of(clips):
        delete_files([clips])


def _runs_of(clips_path: str) -> set:
    """The run ids a clips file's rows name (an unreadable one: none)."""
    try:
        return set(read_table(clips_path).column("run_id").to_pylist())
    except Exception:  # noqa: BLE001 - a damaged file is not this run's to remove
        return set()


def write_plan(films: Sequence[tuple[str, Optional[str]]], unreadable: Iterable[str], output: str, run_id: str,
               model_version: str) -> None:
    """The films this run sets out to score, before it scores any (schemas.rescore_plan): pipeline.report names
    those it never reached, so a rescore stopped part way does not read as a smaller catalogue."""
    now = datetime.now(timezone.utc)
    planned = [*films, *((film_of(path), path) for path in unreadable)]
    rows = [{"run_id": run_id, "film_id": film_id, "features_file": path, "model_version": model_version,
             "planned_at": now} for film_id, path in planned]
    atomic_write_table(rows_to_table(rows, rescore_plan.SCHEMA),
                       FileSystems.join(output, rescore_plan.FOLDER, f"{run_id}.parquet"))


def write_unreadable(unreadable: dict[str, Exception], output: str, run_id: str) -> None:
    """A fatal `rescore` error row for the film of each features file that cannot be read (named by the file)."""
    for path, exc in unreadable.items():
        error = FilmError(film_path=path, stage="rescore", error_type=type(exc).__name__,
                          message=f"the features file cannot be read: {exc}", film_id=film_of(path), fatal=True)
        write_errors([error], output, run_id, film_of(path))


# -- one film: its features and clips tables, and whether they can give what pipeline.run would score
class Refused(Exception):
    """A film the features cannot rescore as pipeline.run would score it: its fatal `rescore` row, no clips file."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type


def read_features_table(path: str) -> list[dict]:
    """A features file's rows, read whole, its page checksums verified where it has them (transforms.write writes
    them): a file that cannot be read whole refuses its film."""
    try:
        with FileSystems.open(path) as f:
            return pq.read_table(io.BytesIO(f.read()), page_checksum_verification=True).to_pylist()
    except Exception as exc:  # noqa: BLE001 - a damaged page: this film's error row, the others go on
        raise Refused(type(exc).__name__, f"the features file {path} cannot be read whole: {exc}") from exc


def read_clips_table(clips_dir: str, film_id: str) -> list[dict]:
    path = FileSystems.join(clips_dir, f"{film_id}.parquet")
    try:
        return read_table(path).to_pylist()
    except Exception as exc:  # noqa: BLE001 - missing or damaged: nothing to put the new scores in
        raise Refused(type(exc).__name__, f"its clips table {path} cannot be read: {exc}") from exc


def check_film(clips: Sequence[dict], feats: Sequence[dict], modalities: Sequence[str],
               text_languages: Optional[Sequence[str]], encoder: Optional[str] = None,
               run_languages: Optional[Sequence[str]] = None) -> None:
    """Raises Refused where these features cannot give what pipeline.run would score for these clips.
    text_languages: the languages read (() = any), None when the text modality is not scored. encoder: the encoder
    version the head reads (None: not checked, --no_encoder_check). run_languages: the languages the run that wrote
    the features read (() = any), where its model_version tells them (languages_read_by_run), else None."""
    wrong = encoders_problem(feats, encoder)
    if wrong:
        raise Refused("EncodersDiffer", wrong)
    different = clip_set_difference(clips, feats)
    if different:
        raise Refused("FeaturesMismatch", f"its clips and features rows are not the same clips ({different}): the "
                      "features are not those of its clips table (written before the film was redone, or copied from "
                      "another output); run pipeline.run with this head")
    lacking = [m for m in modalities if m not in encoded_modalities(feats)]
    if lacking:
        raise Refused("ModalityNotEncoded", f"its features hold no {','.join(lacking)} tokens (written by a run "
                      f"without them in --modalities): leave them out of --modalities, or run pipeline.run")
    if "vision" in modalities and scene_tokens_not_stored(feats):
        raise Refused("SceneNotStored", "its features table was written under features schema 1.0, without the scene "
                      "classifier's frame tokens (scene_*): the scene evidence pipeline.run gives its frames (the "
                      "label, grounded) cannot be recomputed; leave vision out of --modalities, or run pipeline.run")
    damaged = next(((f["clip_index"], why) for f in feats if (why := row_token_problem(f))), None)
    if damaged:
        raise Refused("DamagedFeatures", f"clip {damaged[0]}'s features are damaged: {damaged[1]}")
    if text_languages is not None:
        unencoded = lines_not_encoded(clips, feats, text_languages)
        if unencoded:
            raise Refused("LinesNotEncoded", f"clips {few(unencoded)} have a line this rescore reads "
                          f"(--text_languages) with no text tokens in the features: the run that wrote them did not "
                          "read it (another --text_languages) or could not encode it; run pipeline.run")
    # A rescore without text (an ablation, a head that reads no lines) scores the run's clips without their lines;
    # the subtitle source a text-less run would pick (any language) matters only to where its clips would fall
    changed = (other_dialogue_problem(clips, feats, text_languages, run_languages)
               if text_languages is not None else None)
    if changed:
        raise Refused("TextLanguagesDiffer", changed)


def named_languages(languages: Sequence[str]) -> str:
    """Languages read as --text_languages writes them (() = any)."""
    return ",".join(languages) or "any"


def reads_within(languages: Sequence[str], run_languages: Sequence[str]) -> bool:
    """Whether every line read under `languages` was read under `run_languages` too (() = any)."""
    return not run_languages or (bool(languages) and set(languages) <= set(run_languages))


def other_dialogue_problem(clips: Sequence[dict], feats: Sequence[dict], languages: Sequence[str],
                           run_languages: Optional[Sequence[str]]) -> Optional[str]:
    """Why pipeline.run reading `languages` could give this film other lines than the run that wrote its features did
    (None: it gives the same). --text_languages also picks the film's dialogue: the first subtitle source with half
    its lines read (transforms.subtitles.load_cues, mostly_read; embedded tracks ranked by language_rank) and, under
    --transcribe auto, the speech transcribed instead of subtitles under half of whose lines are read. The features
    cannot show the sources that run passed over, so the rescore must read no language that run did not
    (run_languages, where the clips' model_version tells it); and where that run read the film's lines, the rescore
    must read half of them too: with both, the same source is the first read, and only the text tokens of lines not read now are dropped, as a run
    would drop them. Before 2026-12-07 such a film was rescored from the other source's lines under the new
    model_version (a French sidecar read under 'any', rescored with 'en': a run with 'en' reads the English one)."""
    text_len = {f["clip_index"]: f["text_len"] for f in feats}
    lines = [c for c in clips if (c.get("text") or "").strip()]
    read_then = sorted({c.get("language") or "unknown" for c in lines if text_len.get(c["clip_index"])})
    read_now = [c for c in lines if unread_language(c["text"], c.get("language"), languages) is None]
    if read_then and 2 * len(read_now) < len(lines):  # (a run takes a source of which it reads half the lines)
        return (f"the run that wrote its features read its lines (in {', '.join(read_then)}), and this rescore "
                f"(--text_languages {named_languages(languages)}) reads {'none' if not read_now else 'under half'} "
                "of them: a run with these languages "
                "would take another subtitle source or transcribe the speech; run pipeline.run for it")
    if run_languages is not None and not reads_within(languages, run_languages):
        return (f"the run that wrote its features read lines in {named_languages(run_languages)} (its model_version "
                f"says so), and this rescore reads {named_languages(languages)}: a subtitle source that run passed "
                "over could be the dialogue now; run pipeline.run for it")
    return None


def languages_read_by_run(clips: Sequence[dict], known: Mapping[str, tuple[str, ...]]) -> Optional[tuple[str, ...]]:
    """The languages the run that scored these clips read (() = any), by their model_version (known_run_languages);
    None where it is not one the rescore can recompute."""
    versions = {c.get("model_version") for c in clips} - {None}
    return known.get(versions.pop()) if len(versions) == 1 else None


def known_run_languages(args: argparse.Namespace, encoder: str, modality_sets: Iterable[set[str]]
                        ) -> dict[str, tuple[str, ...]]:
    """{model_version: the languages it reads} for the runs the rescore can recompute: pipeline.run with this --head or
    the shipped one, the encoder version the films are scored with, the modalities a features file holds, and
    --text_languages as this rescore reads it, the shipped default, or 'any'. A model_version is a hash (head bytes,
    encoders, label rule, modalities, languages), so the run's languages are told only by recomputing it; a run with
    another head (or an older label rule) is not found, and its films are judged by their lines alone."""
    from model.checkpoints import model_version
    candidates = list(dict.fromkeys([parse_text_languages(args.text_languages), tuple(TEXT_LANGUAGES), ()]))
    known: dict[str, tuple[str, ...]] = {}
    for head in dict.fromkeys([args.head or None, None]):
        for held in {tuple(m for m in MODALITIES if m in s) for s in modality_sets if s}:
            try:  # a run without text reads subtitles in any language (and its model_version names none)
                for languages in (candidates if "text" in held else [()]):
                    known.setdefault(model_version(head, encoder, held, languages), languages)
            except OSError as exc:  # the shipped head not installed: its runs are not recognised
                LOG.warning("%s: not read (%s): its runs' languages are not recognised", head, exc)
    return known


def scene_tokens_not_stored(feats: Sequence[dict]) -> bool:
    """Whether a film's features rows have frames (vision tokens) but no scene_* columns (features schema 1.0):
    before 2026-12-06 such a film was rescored with no scene evidence, its labels and `grounded` changed silently."""
    return any(f.get("vision_len") for f in feats) and not all("scene_len" in f for f in feats)


def clip_set_difference(clips: Sequence[dict], feats: Sequence[dict]) -> str:
    """What differs between the clip_index values of a film's clips and features rows ('' when they are the same
    clips, each once)."""
    have, got = Counter(r["clip_index"] for r in clips), Counter(f["clip_index"] for f in feats)
    parts = [f"{what} {few(found)}" for what, found in (
        ("clips rows without features:", sorted(set(have) - set(got))),
        ("features rows without a clips row:", sorted(set(got) - set(have))),
        ("clip_index more than once:", sorted(i for i in have | got if have[i] > 1 or got[i] > 1)))
        if found]
    return "; ".join(parts)


def lines_not_encoded(clips: Sequence[dict], feats: Sequence[dict], text_languages: Sequence[str]) -> list[int]:
    """The clips whose line this rescore reads but whose features hold no text tokens: pipeline.run would read it."""
    text_len = {f["clip_index"]: f["text_len"] for f in feats}
    return [c["clip_index"] for c in clips if (c.get("text") or "").strip()
            and unread_language(c["text"], c.get("language"), text_languages) is None and not text_len[c["clip_index"]]]


def few(values: Sequence, n: int = 5) -> str:
    """Up to n values of a list for a message, and how many more."""
    shown = ", ".join(str(v) for v in values[:n])
    return shown + (f" and {len(values) - n} more" if len(values) > n else "")


class ReadFilm(beam.DoFn):
    """(film_id, its features file | None) -> ((film_id, clip_index), (tokens of the chosen modalities, film_path))
    per clip; or, for a film refused (check_film), nothing and its fatal `rescore` error row. A clip whose line the
    text path does not read (its language in the film's clips table) loses its text tokens, as pipeline.run's scorer
    never makes them."""

    def __init__(self, clips_dir: str, output: str, run_id: str, modalities: Sequence[str],
                 text_languages: Sequence[str], encoder: Optional[str] = None,
                 run_languages: Optional[Mapping[str, tuple[str, ...]]] = None):
        self.clips_dir, self.output, self.run_id = clips_dir, output, run_id
        self.modalities, self.text_languages = tuple(modalities), tuple(text_languages)
        self.encoder, self.run_languages = encoder, dict(run_languages or {})

    def process(self, film):
        film_id, path = film
        clips: list[dict] = []
        try:
            clips = read_clips_table(self.clips_dir, film_id)
            if path is None:
                raise Refused("NoFeatures", "it has a clips table but no features file (its clips were written by a "
                              "run without --write_features): run pipeline.run with this head")
            feats = read_features_table(path)
            check_film(clips, feats, self.modalities, self.text_languages if "text" in self.modalities else None,
                       self.encoder, languages_read_by_run(clips, self.run_languages))
        except Refused as r:
            self.refuse(film_id, path, clips, r)
            return
        unread = unread_rows(clips, self.text_languages) if "text" in self.modalities else {}
        without_text = [m for m in self.modalities if m != "text"]
        for row in feats:
            tokens = select_modalities(tokens_from_row(row), without_text if row["clip_index"] in unread
                                       else self.modalities)
            yield (film_id, row["clip_index"]), (tokens, row["film_path"])

    def refuse(self, film_id: str, path: Optional[str], clips: Sequence[dict], r: Refused) -> None:
        LOG.warning("%s: not rescored: %s", film_id, r)
        beam.metrics.Metrics.counter("film_emotion", "films_refused").inc()
        film_path = clips[0]["film_path"] if clips else path or FileSystems.join(self.clips_dir, f"{film_id}.parquet")
        write_errors([FilmError(film_path=film_path, film_id=film_id, stage="rescore", error_type=r.error_type,
                                message=str(r), fatal=True)], self.output, self.run_id, film_id)


def unread_rows(rows: Iterable[dict], text_languages: Sequence[str]) -> dict[int, str]:
    """{clip_index: language} of the clips-table rows whose line the text path does not read."""
    found = ((r["clip_index"], unread_language(r["text"], r["language"], text_languages)) for r in rows)
    return {i: lang for i, lang in found if lang}


class WriteRescoredFilm(beam.DoFn):
    """(film_id, [(clip_index, (film_path, scores | Failure))]) -> the film's new clips table and its error rows,
    both committed at once (deterministic names: a retried bundle rewrites the same files)."""

    def __init__(self, clips_dir: str, output: str, run_id: str, text_languages: Sequence[str] = (),
                 modalities: Optional[Sequence[str]] = None):
        self.clips_dir, self.output, self.run_id, self.text_languages = clips_dir, output, run_id, text_languages
        self.modalities = modalities  # (the unread lines' row says what their clips are scored from, as a run's)

    def process(self, grouped):
        film_id, items = grouped
        items = dict(items)
        film_path = next(iter(items.values()))[0]
        # the head failing for a clip is fatal, as in a run (its score columns null; before 2026-12-07 a head that
        # cannot read the features "rescored" every film with null labels, found in review)
        errors = [FilmError(film_path=film_path, film_id=film_id, clip_index=i, stage=r.modality,
                            error_type=r.error_type, message=r.message, fatal=r.modality == "fuse")
                  for i, (_, r) in items.items() if isinstance(r, Failure)]
        try:
            errors += self.write_clips(film_id, film_path, items)
        except Exception as e:  # noqa: BLE001 - one film's failure is a row, not a crash
            LOG.exception("rescore write failed for %s", film_id)
            errors.append(FilmError(film_path=film_path, film_id=film_id, stage="write",
                                    error_type=type(e).__name__, message=str(e) or repr(e)))
        if errors:
            write_errors(errors, self.output, self.run_id, film_id)
        else:  # an earlier attempt under the same --run_id may have refused it: its rows are not this film's state
            stale = FileSystems.join(self.output, "errors", self.run_id, f"{film_id}.parquet")
            if FileSystems.exists(stale):
                delete_files([stale])
        yield film_id

    def write_clips(self, film_id: str, film_path: str, items: dict) -> list[FilmError]:
        """The film's clips table with the new scores (each clip's own; null where the head failed for it), and the
        warning for the lines it did not read. The clips table is read again: one rewritten since ReadFilm checked
        it is refused rather than scored with nulls."""
        old = read_table(FileSystems.join(self.clips_dir, f"{film_id}.parquet")).to_pylist()
        different = clip_set_difference(old, [{"clip_index": i} for i in items])
        if different:
            return [FilmError(film_path=film_path, film_id=film_id, stage="rescore", error_type="FeaturesMismatch",
                              message=f"its clips table changed while it was rescored ({different})", fatal=True)]
        rows = []
        run_version = next((r["model_version"] for r in old if r.get("model_version")), None)
        for row in old:
            new = {c: None for c in SCORE_COLUMNS if c != "n_faces"}
            res = items[row["clip_index"]][1]
            if isinstance(res, dict):
                new.update(res)
            rows.append({**row, **new, "run_id": self.run_id,
                         "config_hash": rescored_config_hash(row["config_hash"], run_version)})
        unread = Counter(unread_rows(old, self.text_languages).values())
        atomic_write_table(rows_to_table(rows, clips_schema.SCHEMA),
                           FileSystems.join(self.output, "clips", f"{film_id}.parquet"))
        beam.metrics.Metrics.counter("film_emotion", "films_rescored").inc()
        return [unread_lines_warning(FilmRef(film_path, 0, film_id, ""), unread, len(old), self.text_languages,
                                     self.modalities)
                ] if unread else []


def rescored_config_hash(config_hash: str, run_version: Optional[str]) -> str:
    """The config_hash a rescored clip records: its first run's hash, '@', the model_version that hash was computed
    with (a clip rescored again keeps the pair it has). The rescore has not the run's media options, so it cannot
    compute the hash a run with this head would give; with the pair, pipeline.report --explain checks the media
    options against the first and the head against the clip's model_version. Before 2026-12-07 the first run's hash
    alone was kept: --explain refused the rescoring head and accepted the old one."""
    if "@" in config_hash or not run_version:
        return config_hash
    return f"{config_hash}@{run_version}"


def clips_folder(args: argparse.Namespace) -> str:
    """--clips, else the clips/ folder beside the features folder: beside it as written, or, where there is none
    there, beside the folder it links to (before 2026-12-07 a linked features folder found no clips table)."""
    if args.clips:
        return args.clips
    features = args.features.rstrip("/")
    beside = posixpath.join(posixpath.dirname(features), "clips")
    if is_url(features) or os.path.isdir(beside):
        return beside
    return posixpath.join(posixpath.dirname(os.path.realpath(features)), "clips")


def build_rescore(p: beam.Pipeline, args: argparse.Namespace, model_version: str,
                  films: Sequence[tuple[str, Optional[str]]], encoder: Optional[str] = None,
                  run_languages: Optional[Mapping[str, tuple[str, ...]]] = None) -> beam.PCollection:
    """films: (film_id, its features file, or None for a film with a clips table and none: it is refused).
    encoder: the encoder version each film's features must record (None: not checked); run_languages:
    known_run_languages."""
    clips_dir = clips_folder(args)
    modalities = parse_modalities(args.modalities)
    languages = parse_text_languages(args.text_languages) if "text" in modalities else ()
    return (p
            | "Films" >> beam.Create(list(films))
            | "Reshuffle" >> beam.Reshuffle()
            | "ReadFeatures" >> beam.ParDo(ReadFilm(clips_dir, args.output, args.run_id, modalities, languages,
                                                    encoder, run_languages))
            | "Head" >> FuseClips(args.head, model_version, device=args.device, batch_size=args.batch_size,
                                  torch_threads=args.torch_threads, accelerator=args.accelerator,
                                  vision_model=args.vision_model, image_size=args.image_size)
            | "ByFilm" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[1])))
            | "GroupByFilm" >> beam.GroupByKey()
            | "WriteClips" >> beam.ParDo(WriteRescoredFilm(clips_dir, args.output, args.run_id, languages, modalities)))


def run(argv: Optional[list[str]] = None, save_main_session: bool = True) -> dict:
    from model.checkpoints import model_version, unlearnt_modalities_problem
    args, beam_args = parse_args(argv)
    for warning in other_runner_options(beam_args):  # (--num_workers 8 on a local run: one worker, without a word)
        LOG.warning("%s", warning)
    # before any features file is read: a modality the head never learnt would be scored by untrained weights
    if problem := unlearnt_modalities_problem(args.head, parse_modalities(args.modalities)):
        raise SystemExit(f"pipeline.rescore: {problem}")
    opts = PipelineOptions(beam_args)
    if problem := cuda_problem(args, opts.view_as(StandardOptions).runner):  # (before 2026-12-07: a traceback,
        raise SystemExit(f"pipeline.rescore: {problem}")                      # after the plan was written)
    args.run_id = args.run_id or datetime.now(timezone.utc).strftime("rescore-%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:6]
    readable, unreadable = features_files(args.features)
    if not set().union(*(v for v, _ in readable.values())):
        if unreadable:  # each is its film's fatal row, as when some other file reads (before 2026-12-07: "no table")
            write_unreadable(unreadable, args.output, args.run_id)
            path, exc = next(iter(unreadable.items()))
            raise SystemExit(f"pipeline.rescore: none of the {len(unreadable)} features file(s) in {args.features} "
                             f"can be read (each is a fatal row under {args.output}/errors/{args.run_id}/; the first, "
                             f"{path}: {exc})")
        raise SystemExit(f"pipeline.rescore: no features table in {args.features} (a pipeline.run --output's "
                         "features/ folder, written with --write_features)")
    if args.no_encoder_check:
        encoder, checked = single_encoder_version(args, {p: v for p, (v, _) in readable.items()}), None
    else:  # each film is checked (ReadFilm); only features none of which this head reads stop here
        encoder = checked = head_encoder_version(args)
        check_encoders(args, encoder, [v for v, _ in readable.values()])
    check_modalities(args, [held for _, held in readable.values()])
    version = model_version(args.head, encoder, parse_modalities(args.modalities),
                            parse_text_languages(args.text_languages))
    run_languages = known_run_languages(args, encoder, [held for _, held in readable.values()])
    opts.view_as(SetupOptions).save_main_session = save_main_session
    no_features = clips_without_features(clips_folder(args), [*readable, *unreadable])
    films = [(film_of(p), p) for p in readable] + [(film_id, None) for film_id in no_features]
    write_plan(films, unreadable, args.output, args.run_id, version)
    write_unreadable(unreadable, args.output, args.run_id)
    with beam.Pipeline(runner=offline_direct_runner(opts.view_as(StandardOptions).runner), options=opts) as p:
        build_rescore(p, args, version, films, checked, run_languages)
    LOG.info("rescored %s with %s -> %s", args.features, version, args.output)
    return {"run_id": args.run_id, "model_version": version, "output": args.output, "unreadable": list(unreadable),
            "no_features": no_features}


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    print(run())
