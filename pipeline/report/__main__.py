"""A self-contained HTML report of a pipeline output directory.

    python -m pipeline.report --input out/ --output report.html [--explain FILM_ID:CLIP_INDEX] [--max_films 30]
        [the run's options, for --explain of a film without a features table: --frames_per_clip 2 --modalities ...]

One HTML file: charts are base64 PNG (matplotlib), thumbnails base64 JPEG decoded from the films by the
pipeline's own decoder, styles inline, no scripts, no network: it opens offline and can be mailed around.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from pipeline.arg_types import count_arg, head_path_arg, io_path
from pipeline.options import add_run_settings
from pipeline.report.build import ReportInputError, ReportOptions, build_report


def _explain_arg(value: str) -> tuple[str, int]:
    film_id, sep, index = value.rpartition(":")
    if not sep or not film_id or not index.isdigit():
        raise argparse.ArgumentTypeError("expected FILM_ID:CLIP_INDEX, e.g. sintel_trailer-1a2b:12")
    return film_id, int(index)


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[argparse.Namespace, ReportOptions]:
    d = ReportOptions()
    p = argparse.ArgumentParser(prog="python -m pipeline.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, type=io_path, help="the pipeline's --output directory")
    p.add_argument("--output", default="report.html", type=io_path, help="HTML file to write")
    p.add_argument("--explain", type=_explain_arg, metavar="FILM_ID:CLIP_INDEX",
                   help="add the cross-modal attention map and modality gates of one clip")
    p.add_argument("--head", default=None, type=head_path_arg,
                   help="head checkpoint for --explain (default: the shipped head)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="device for --explain")
    p.add_argument("--max_films", type=count_arg, default=d.max_films, help="films drawn in detail")
    p.add_argument("--films", default="", help="comma-separated film ids to draw in detail (overrides --max_films)")
    p.add_argument("--top_clips", type=count_arg, default=d.top_clips, help="most intense grounded clips per emotion and film")
    p.add_argument("--max_clip_rows", type=count_arg, default=d.max_clip_rows, help="rows of each detailed film's clip table")
    p.add_argument("--max_table_rows", type=count_arg, default=d.max_table_rows, help="films listed in the catalogue table")
    p.add_argument("--max_errors", type=count_arg, default=d.max_errors, help="error rows listed in full")
    p.add_argument("--max_chart_films", type=count_arg, default=d.max_chart_films, help="films in the catalogue chart")
    p.add_argument("--no_thumbnails", action="store_true", help="do not open the films for frame thumbnails")
    p.add_argument("--title", default=d.title)
    # pipeline.run's own definitions: --explain re-encodes a clip under them where the run wrote no features table
    run_options = add_run_settings(p, skip=("head", "device"), title="the run's options, for --explain without a "
                                   "features table (must give the clip's config hash)")
    args = p.parse_args(argv)
    opts = ReportOptions(
        max_films=args.max_films, films=tuple(dict.fromkeys(x.strip() for x in args.films.split(",") if x.strip())),
        top_clips=args.top_clips,
        max_clip_rows=args.max_clip_rows, max_table_rows=args.max_table_rows, max_errors=args.max_errors, max_chart_films=args.max_chart_films,
        thumbnails=not args.no_thumbnails, explain=args.explain, head=args.head, device=args.device,
        run_options=tuple((dest, getattr(args, dest)) for dest in run_options), title=args.title)
    return args, opts


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args, opts = parse_args(argv)
    try:
        out = build_report(args.input, args.output, opts)
    except ReportInputError as exc:
        raise SystemExit(f"pipeline.report: {exc}") from None
    except OSError as exc:  # the report could not be written (full disk, permissions), or a table not read
        named, report = getattr(exc, "filename", None), Path(args.output)
        named = Path(str(named)) if named else None
        # written beside its name first (model.files.written_atomically: ".<stem>.tmp..."), then renamed: before
        # 2026-12-07 a failure there read "cannot read <that temp file>"
        writing = (named is None or named == report
                   or named.parent == report.parent and named.name.startswith(f".{report.stem}.tmp"))
        what = f"cannot write {args.output}" if writing else f"cannot read {named}"
        raise SystemExit(f"pipeline.report: {what}: {exc}") from None
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
