"""The HTML report of a pipeline output directory: `python -m pipeline.report --input out/ --output report.html`.

    __main__.py   the command line (parse_args, main)
    build.py      assembly: ReportOptions, build_report, render
    data.py       reads the output directory's tables (both manifest/errors layouts)
    plots.py      matplotlib figures as base64 PNG
    frames.py     thumbnails, decoded by transforms.decode.decode_clip
    explain.py    --explain: one clip's cross-modal attention (model.featurize + model.encoders.create_encoders)
    templates/    report.html.j2

Python API: `build_report(input_dir, output, ReportOptions(...)) -> Path`.
"""
from pipeline.report.build import ReportOptions, build_report, render

__all__ = ["ReportOptions", "build_report", "render", "main", "parse_args"]


def __getattr__(name: str):
    # The CLI lives in __main__.py; it is imported only when asked for, so `python -m pipeline.report` does not
    # find it already imported (runpy would warn).
    if name in ("main", "parse_args"):
        from pipeline.report import __main__ as cli
        return getattr(cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
