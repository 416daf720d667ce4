"""`python -m pipeline.run --input GLOB [--input GLOB ...] --output DIR [--runner ...] [Beam options]`

Wires the Beam steps (see DESIGN.md): discover -> skip done -> probe -> subtitles -> decode (streamed clips)
-> [scorer] -> per-film write -> run tables. Only small rows cross the per-film GroupByKey; the decoded frames
go from decode straight into the scorer within one fused stage.
"""
from __future__ import annotations

import datetime as dt
import logging
import secrets
import sys
import time
from typing import Callable, Optional

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

from pipeline.options import FilmEmotionOptions, config_hash
from transforms.decode import FILMS_TAG, ROWS_TAG, DecodeConfig, DecodeFilm
from transforms.discover import DiscoverFilms, film_id_for
from transforms.elements import ERRORS_TAG
from transforms.probe import ProbeFilm
from transforms.subtitles import LoadSubtitles
from transforms.write import (SKIPPED_TAG, SkipDone, WriteFilm, WriteRunTable, error_row, join_path,
                              load_done_films, read_table)

log = logging.getLogger("pipeline.run")


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def build_pipeline(p: beam.Pipeline, opts: PipelineOptions, scorer: Optional[Callable] = None,
                   cue_source_factory: Optional[Callable] = None, done: Optional[dict] = None) -> dict:
    """Add the whole job to `p`. Returns the main PCollections (handy for tests and for extending the graph).

    scorer(PCollection[DecodedClip]) -> {'scores': ((film_id, clip_index), score columns), 'features': rows,
    'errors': FilmError}; its `.model_version` goes into the config hash so a new head re-scores.
    """
    fo = opts.view_as(FilmEmotionOptions)
    if not fo.input or not fo.output:
        raise ValueError("--input and --output are required")
    run_id = fo.run_id or new_run_id()
    fo.run_id = run_id
    chash = config_hash(fo, getattr(scorer, "model_version", None) if scorer is not None else None)
    if done is None:
        done = {} if fo.force else load_done_films(fo.output)

    found = p | "Discover" >> DiscoverFilms(fo.input)
    todo = found.films | "SkipDone" >> beam.ParDo(SkipDone(done, chash, run_id, fo.force)).with_outputs(
        SKIPPED_TAG, main="todo")
    probed = todo.todo | "Probe" >> beam.ParDo(ProbeFilm()).with_outputs(ERRORS_TAG, main="probed")
    jobs = probed.probed | "Subtitles" >> beam.ParDo(
        LoadSubtitles(chash, fo.transcribe, fo.subtitle_language)).with_outputs(ERRORS_TAG, main="jobs")
    decoded = jobs.jobs | "Decode" >> beam.ParDo(
        DecodeFilm(DecodeConfig.from_options(fo), run_id, cue_source_factory)).with_outputs(
        ERRORS_TAG, ROWS_TAG, FILMS_TAG, main="clips")

    error_parts = [found.errors, probed.errors, jobs.errors, decoded.errors]
    groups = {
        "refs": todo.todo | "KeyRefs" >> beam.Map(lambda r: (r.film_id, r)),
        "rows": decoded[ROWS_TAG],
        "films": decoded[FILMS_TAG],
    }
    if scorer is not None:
        scored = scorer(decoded.clips)
        groups["scores"] = scored["scores"] | "KeyScores" >> beam.MapTuple(lambda key, cols: (key[0], (key[1], cols)))
        groups["features"] = scored["features"] | "KeyFeatures" >> beam.Map(lambda r: (r["film_id"], r))
        error_parts.append(scored["errors"])
    errors = error_parts | "AllErrors" >> beam.Flatten()
    groups["errors"] = errors | "KeyErrors" >> beam.Map(lambda e: (e.film_id or film_id_for(e.film_path), e))

    asr_name = getattr(cue_source_factory, "model_name", None) or fo.asr_model or "unknown"
    written = (groups
               | "PerFilm" >> beam.CoGroupByKey()
               | "WriteFilms" >> beam.ParDo(WriteFilm(fo.output, run_id, chash, fo.write_transcripts, asr_name))
               .with_outputs(ERRORS_TAG, main="manifest"))
    manifest = (written.manifest, todo[SKIPPED_TAG]) | "AllFilms" >> beam.Flatten()
    manifest | "WriteManifest" >> WriteRunTable(fo.output, "manifest", run_id)
    error_rows = ((errors, written.errors) | "AllErrorsAndWrite" >> beam.Flatten()
                  | "ErrorRows" >> beam.Map(error_row, run_id))
    error_rows | "WriteErrors" >> WriteRunTable(fo.output, "errors", run_id)
    return {"run_id": run_id, "config_hash": chash, "clips": decoded.clips, "manifest": manifest,
            "errors": errors}


def _default_scorer(fo: FilmEmotionOptions):
    if not fo.score:
        return None
    from transforms.score import make_scorer  # imports torch and loads the encoders: only when scoring
    return make_scorer(fo)


def _default_cue_source_factory(fo: FilmEmotionOptions):
    if fo.transcribe == "never":
        return None
    from transforms.transcribe import AsrCueSourceFactory
    return AsrCueSourceFactory.from_options(fo)


def summarise(output_dir: str, run_id: str, wall_s: float) -> dict:
    rows = read_table(join_path(output_dir, "manifest", f"{run_id}.parquet")).to_pylist()
    count = {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "skipped")}
    processed = [r for r in rows if r["status"] == "ok"]
    film_s = sum(r["duration_s"] or 0.0 for r in processed)
    return {"run_id": run_id, "films": len(rows), **count,
            "clips": sum(r["n_clips"] or 0 for r in processed),
            "hours": film_s / 3600.0, "wall_s": wall_s, "realtime_factor": film_s / wall_s if wall_s > 0 else 0.0}


def format_summary(s: dict) -> str:
    return (f"run {s['run_id']}: films ok={s['ok']} failed={s['failed']} skipped={s['skipped']} | "
            f"clips={s['clips']} | film hours={s['hours']:.3f} | wall={s['wall_s']:.1f}s | "
            f"real-time factor={s['realtime_factor']:.1f}x")


def run(argv: Optional[list[str]] = None, save_main_session: bool = True, scorer: Optional[Callable] = None,
        cue_source_factory: Optional[Callable] = None) -> dict:
    """Run the job; returns the summary dict (also printed as one line) with the Beam result under 'result'."""
    opts = PipelineOptions(argv)
    opts.view_as(SetupOptions).save_main_session = save_main_session
    fo = opts.view_as(FilmEmotionOptions)
    if not fo.input or not fo.output:
        raise SystemExit("pipeline.run: --input and --output are required (see --help)")
    scorer = scorer if scorer is not None else _default_scorer(fo)
    cue_source_factory = cue_source_factory or _default_cue_source_factory(fo)
    t0 = time.perf_counter()
    p = beam.Pipeline(options=opts)
    built = build_pipeline(p, opts, scorer=scorer, cue_source_factory=cue_source_factory)
    result = p.run()
    result.wait_until_finish()
    summary = summarise(fo.output, built["run_id"], time.perf_counter() - t0)
    summary.update(config_hash=built["config_hash"], result=result)
    print(format_summary(summary), flush=True)
    return summary


def print_help() -> None:
    import argparse
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.run",
        description="Cut every film matched by --input into clips (subtitle cues, windows or shots), decode each "
                    "film once, score the clips and write Parquet tables under --output. Films already done "
                    "with the same content and configuration are skipped.",
        epilog="Any Apache Beam pipeline option is accepted too, e.g. --runner=DirectRunner|DataflowRunner|"
               "FlinkRunner|PortableRunner, --direct_num_workers=N --direct_running_mode=multi_processing, "
               "--setup_file=./setup.py, --temp_location=gs://... (see Beam's documentation).")
    FilmEmotionOptions._add_argparse_args(parser)
    parser.print_help()


def main(argv: Optional[list[str]] = None) -> int:
    argv = argv if argv is not None else sys.argv[1:]
    if "--help" in argv or "-h" in argv:
        print_help()
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
