"""Assembles the report: reads the output directory (data), draws the charts (plots), takes the thumbnails
(frames), optionally explains one clip (explain), and renders templates/report.html.j2 into one HTML file."""
from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import re
from collections import Counter
from pathlib import Path
from typing import Optional, Sequence

import jinja2
import numpy as np

from pipeline.report import data as tables
from pipeline.report import frames as stills
from pipeline.report import plots as charts
from pipeline.report.plots import EMOTION_COLORS, fmt_time
from schemas import EMOTIONS, PROB_COLUMNS
from schemas.clips import EVIDENCE_MODALITIES, GROUNDED_SUPPORT, backing_evidence
from transforms.discover import local_path
from model.files import written_atomically

LOG = logging.getLogger(__name__)
TEMPLATE = "report.html.j2"
LIGHT = {"joy", "neutral"}  # emotion colours light enough to need dark text on them


@dataclasses.dataclass(frozen=True)
class ReportOptions:
    max_films: int = 30  # films drawn in detail; the rest are rows of the catalogue table
    films: tuple[str, ...] = ()  # pick the detailed films explicitly
    top_clips: int = 3  # most intense clips shown per emotion and film (grounded clips only)
    max_clip_rows: int = 200  # rows of each detailed film's clip table
    max_table_rows: int = 500
    max_errors: int = 300
    max_chart_films: int = 60
    thumbnails: bool = True
    explain: Optional[tuple[str, int]] = None
    head: Optional[str] = None  # head checkpoint for --explain (None = shipped default)
    device: str = "cpu"
    # the run's options for --explain of a film without a features table ((destination, value) pairs, as pipeline.run
    # takes them): its clip is re-encoded under them, and only where they give the clip's config hash
    run_options: tuple[tuple[str, object], ...] = ()
    title: str = "Film emotion report"


def _anchor(film_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", film_id)


def _duration(seconds: Optional[float]) -> str:
    return fmt_time(seconds) if seconds else "-"


def _bar(f: tables.FilmSummary) -> list[dict]:
    """A scored film's mix: each emotion's share of its clips, its solid part (FilmSummary.solid_counts: grounded
    clips) solid and the rest, its guesses, striped (`guess`)."""
    out = []
    for e, s, g in zip(EMOTIONS, f.shares, f.solid_counts / f.n_scored):
        out += [{"pct": round(100 * float(p), 2), "color": EMOTION_COLORS[e], "guess": guess}
                for p, guess in ((g, False), (s - g, True)) if p > 1e-9]
    return out


def _bar_title(f: tables.FilmSummary) -> str:
    """The mix in words: each emotion's share, and of it the grounded share where evidence was recorded."""
    if not f.n_evidence:
        return ", ".join(f"{e} {100 * s:.0f}%" for e, s in zip(EMOTIONS, f.shares) if s > 0)
    return ", ".join(f"{e} {100 * s:.0f}% ({100 * g:.0f}% grounded)"
                     for e, s, g in zip(EMOTIONS, f.shares, f.grounded_shares) if s > 0)


def _grounded_text(f: tables.FilmSummary) -> str:
    """The film's grounded share as the catalogue and the film's summary line say it."""
    if not f.n_scored:
        return ""
    share = f.grounded_share
    return "no evidence recorded" if share is None else f"{100 * share:.0f}%"


def _runs_line(data: tables.OutputData) -> str:
    """The header's word on the runs: the latest run, or for an output without a manifest whose runs wrote it (before
    2026-12-06 a pipeline.rescore output read "latest run none" and "runs in this output: 0")."""
    if data.has_manifest:
        return f"latest run {data.latest_run_id}"
    if not data.run_ids:
        return "no runs yet"
    rescore = [r for r in data.run_ids if r in data.rescore_runs]
    named = ", ".join(data.run_ids)
    if rescore and len(rescore) == len(data.run_ids):
        return f"pipeline.rescore output (no manifest): run {named}"
    return f"no manifest: clips and errors of run {named}"


def _summary(data: tables.OutputData) -> dict:
    """The run summary's cards and notes. Without a manifest there is no "processed ok" or "skipped": the card counts
    the films with clips (rescored where a rescore run wrote them)."""
    status = Counter(f.status for f in data.films)
    with_evidence = [f for f in data.films if f.n_scored and f.n_evidence]
    n_ev = sum(f.n_scored for f in with_evidence)
    with_clips = [f for f in data.films if f.n_clips]
    versions = sorted({v for f in data.films for v in f.model_versions})
    processed, processed_label = status["ok"], "processed ok"
    if not data.has_manifest:
        processed = status["rescored"] + status["scored"]
        processed_label = "rescored" if status["rescored"] and not status["scored"] else "films with clips"
    return {
        "films": len(data.films), "processed": processed, "processed_label": processed_label,
        "scored": sum(1 for f in data.films if f.n_scored), "failed": status["failed"],
        "skipped": sum(f.skipped_last for f in data.films), "has_manifest": data.has_manifest,
        "unknown": status["unknown"], "pending": status["pending"], "unfinished_run": data.unfinished_run,
        "clips": sum(f.n_clips for f in data.films),
        "hours": sum(f.duration_s or 0.0 for f in with_clips) / 3600.0, "model_versions": versions,
        "runs": len(data.run_ids), "latest_run": data.latest_run_id, "runs_line": _runs_line(data),
        "grounded_pct": (f"{100 * sum(f.n_grounded for f in with_evidence) / n_ev:.0f}%" if n_ev else "-"),
        "no_evidence_films": sum(1 for f in data.films if f.n_scored and not f.n_evidence),
        "damaged_clips": sum(f.n_damaged for f in data.films),
        "damaged_films": sum(1 for f in data.films if f.n_damaged),
        "damage_unknown_films": sum(1 for f in data.films if f.n_damage_unknown),
    }


def _table_rows(data: tables.OutputData, detailed: set[str], limit: int) -> tuple[list[dict], int]:
    # Failed films first, then those a stopped rescore never reached: they are what needs a person's attention.
    ordered = sorted(data.films, key=lambda f: ({"failed": 0, "pending": 1}.get(f.status, 2), f.film_id))
    rows = []
    for f in ordered[:limit]:
        rows.append({
            "film_id": f.film_id, "anchor": _anchor(f.film_id), "detailed": f.film_id in detailed,
            "status": f.status, "duration": _duration(f.duration_s), "n_clips": f.n_clips,
            "dominant": f.dominant, "dominant_color": EMOTION_COLORS.get(f.dominant or "", ""),
            "dominant_light": f.dominant in LIGHT,
            "bar": _bar(f) if f.n_scored else [],
            "bar_title": _bar_title(f), "no_grounded": bool(f.n_evidence and not f.n_grounded),
            "error": f.error,  # (an ok film's too: its clips file unreadable or gone; before 2026-12-07 not shown)
            "grounded": _grounded_text(f), "no_evidence": bool(f.n_scored and not f.n_evidence),
        })
    return rows, max(0, len(ordered) - limit)


def _errors(data: tables.OutputData, limit: int) -> tuple[list[dict], list[dict], int]:
    rows = data.errors.to_pylist()
    rows.sort(key=lambda r: (not r["fatal"], r["film_id"] or "", r["clip_index"] if r["clip_index"] is not None else -1))
    groups: dict[tuple[str, str], dict] = {}
    for r in rows:
        g = groups.setdefault((r["stage"], r["error_type"]), {"stage": r["stage"], "error_type": r["error_type"],
                                                               "fatal": 0, "warnings": 0, "film_set": set()})
        g["fatal" if r["fatal"] else "warnings"] += 1
        g["film_set"].add(r["film_id"] or r["film_path"])
    group_rows = [{**{k: v for k, v in g.items() if k != "film_set"}, "films": len(g["film_set"])}
                  for g in sorted(groups.values(), key=lambda g: (-g["fatal"], -g["warnings"]))]
    return rows[:limit], group_rows, max(0, len(rows) - limit)


def _catalogue_figure(data: tables.OutputData, films: Sequence[tables.FilmSummary],
                      limit: int) -> tuple[Optional[str], Optional[str]]:
    scored = [f for f in films if f.n_scored]
    if not scored:
        return None, None
    shown = scored[:limit]
    every = [f for f in data.films if f.n_scored]
    total = np.sum([f.counts for f in every], axis=0).astype(float)
    ids = [f"ALL FILMS ({len(every)})"] + [f.film_id for f in shown]
    shares = np.vstack([total / total.sum()] + [f.shares for f in shown])
    counts = [int(total.sum())] + [f.n_scored for f in shown]
    with_evidence = [f for f in every if f.n_evidence]
    n_ev = sum(f.n_scored for f in with_evidence)
    grounded = ([sum(f.n_grounded for f in with_evidence) / n_ev if n_ev else None]
                + [f.grounded_share for f in shown])
    # the solid part of each share: grounded clips (FilmSummary.solid_counts)
    solid = np.vstack([np.sum([f.solid_counts for f in every], axis=0) / total.sum()]
                      + [f.solid_counts / f.n_scored for f in shown])
    note = None
    if len(every) > len(shown):
        note = (f"The chart shows the whole catalogue and {len(shown)} of {len(every)} scored films; "
                "the table below has a bar for every film.")
    return charts.catalogue_distribution(ids, shares, counts, grounded, solid), note


def _modalities(value) -> str:
    return "uses " + ", ".join(value) if value else ""


def _evidence_probs(r: dict) -> dict[str, list[float]]:
    """Each modality's own probabilities (EMOTIONS order) for a clip, for the modalities it had."""
    return {m: r[f"evidence_{m}"] for m in EVIDENCE_MODALITIES
            if r.get(f"evidence_{m}") is not None and len(r[f"evidence_{m}"]) == len(EMOTIONS)}


def _no_evidence(r: dict) -> bool:
    return r.get("grounded") is None and r.get("support") is None


def _backing(r: dict) -> str:
    """Which modalities back the clip's label, as `grounded` counts backing (their own probability for it at least
    GROUNDED_SUPPORT), strongest first, e.g. "face 0.71, speech 0.55"; a guess: "no modality", with the strongest
    word for it. (Before 2026-12-06 it named the modalities whose top label agreed: a grounded clip could show
    "speech 0.26" while its face gave 0.44.)"""
    if _no_evidence(r):
        return "no evidence recorded"
    j = EMOTIONS.index(r["emotion"])
    said = sorted(((p[j], m) for m, p in backing_evidence(_evidence_probs(r)).items()), reverse=True)
    strong = [f"{m} {p:.2f}" for p, m in said if p >= GROUNDED_SUPPORT]
    if strong:
        return ", ".join(strong)
    return f"no modality (strongest: {said[0][1]} {said[0][0]:.2f})" if said else "no modality"


def _grounding(r: dict) -> str:
    if r.get("grounded") is None:
        return "no evidence recorded"
    if r.get("older_rule"):  # written under LABEL_RULE 4: the scene's word alone where a face was found
        return "guess (grounded under the rule before 2026-12-06)"
    return "grounded" if r["grounded"] else "guess"


def _damage(r: dict) -> Optional[str]:
    """What of the clip's media is damaged (the clips table's `damaged`), as the clip table says it."""
    what = [{"video": "picture", "audio": "sound"}.get(s, s) for s in (r.get("damaged") or [])]
    return f"{' and '.join(what)} damaged" if what else None


def _votes(r: dict) -> list[dict]:
    """Per modality, its own top label and probability (does it agree with the fused label?)."""
    out = []
    for m, p in _evidence_probs(r).items():
        k = int(np.argmax(p))
        out.append({"modality": m, "emotion": EMOTIONS[k], "prob": float(p[k]), "color": EMOTION_COLORS[EMOTIONS[k]],
                    "light": EMOTIONS[k] in LIGHT, "backs": EMOTIONS[k] == r["emotion"]})
    return out


def _support(r: dict) -> Optional[str]:
    return None if r.get("support") is None else f"{r['support']:.2f}"


def _clip_rows(scored: list[dict], limit: int) -> list[dict]:
    rows = []
    for r in scored[:limit]:
        emo = r["emotion"]
        rows.append({
            "clip_index": r["clip_index"], "when": f"{fmt_time(r['start_s'])}-{fmt_time(r['end_s'])}",
            "emotion": emo, "color": EMOTION_COLORS.get(emo, "#999"), "light": emo in LIGHT,
            "prob": (r[PROB_COLUMNS[EMOTIONS.index(emo)]] or 0.0) if emo in EMOTIONS else 0.0,
            "grounding": _grounding(r), "backing": _backing(r), "support": _support(r), "text": r["text"],
            "damage": _damage(r),
        })
    return rows


def _film_section(root: str, f: tables.FilmSummary, opts: ReportOptions) -> dict:
    table = tables.read_clips(root, f.film_id)
    rows = table.to_pylist()
    for r, today in zip(rows, tables.grounded_column(table)):
        r["older_rule"], r["grounded"] = today != r["grounded"], today
    scored = [r for r in rows if r["emotion"] is not None]
    start = np.array([r["start_s"] for r in scored], dtype=float)
    end = np.array([r["end_s"] for r in scored], dtype=float)
    probs = np.array([[r[c] or 0.0 for c in PROB_COLUMNS] for r in scored], dtype=float).reshape(-1, len(EMOTIONS))
    grounded = [r["grounded"] for r in scored]  # True, False, or None (no evidence recorded)
    evidence_recorded = any(g is not None for g in grounded)
    guessing = charts.guess_stretches(start, end, grounded) if scored else []
    damaged = [bool(r.get("damaged")) for r in scored]  # (null in files written before clips schema 1.2)
    arc = charts.emotion_arc(start, end, probs, [r["emotion"] for r in scored], f.duration_s,
                             grounded=grounded, damaged=damaged if any(damaged) else None) if scored else None

    # The most intense moments: only clips whose label some modality backs on its own (grounded), on media that
    # is not damaged; a guess, however high its probability, is not a moment, nor a label read off concealed frames.
    moments = []
    backed = [r for r, d in zip(scored, damaged) if tables.is_grounded(r["grounded"]) and not d]
    for j, emo in enumerate(EMOTIONS):
        mine = sorted((r for r in backed if r["emotion"] == emo), key=lambda r: -(r[PROB_COLUMNS[j]] or 0.0))
        for r in mine[: opts.top_clips]:
            mid = (r["start_s"] + r["end_s"]) / 2.0
            moments.append({
                "emotion": emo, "color": EMOTION_COLORS[emo], "light": emo in LIGHT, "prob": r[PROB_COLUMNS[j]] or 0.0,
                "clip_index": r["clip_index"], "text": r["text"], "mid_s": mid, "mid": fmt_time(mid),
                "when": f"{fmt_time(r['start_s'])}-{fmt_time(r['end_s'])}", "modalities": _modalities(r["modalities_used"]),
                "thumb": None, "backing": _backing(r), "support": _support(r), "votes": _votes(r),
            })
    no_moments = None
    if scored and not backed:
        no_moments = ("No evidence recorded for this film's clips (written before clips schema 1.1), so no clip "
                      "can be shown as a grounded moment." if not evidence_recorded else
                      "No grounded clip in this film: no single modality backs any of its labels, so every label "
                      "is a guess and no moments are shown." if not any(tables.is_grounded(g) for g in grounded) else
                      "Every grounded clip of this film is on damaged media (see the errors table), so no moments "
                      "are shown.")
    if not scored and rows:
        # Cut but not scored (--no_score): still show what the clips look like, evenly through the film.
        picks = sorted({int(round(k)) for k in np.linspace(0, len(rows) - 1, min(len(rows), 2 * opts.top_clips))})
        for r in (rows[k] for k in picks):
            mid = (r["start_s"] + r["end_s"]) / 2.0
            moments.append({
                "emotion": None, "color": "#c3c8d2", "light": True, "prob": 0.0, "clip_index": r["clip_index"],
                "text": r["text"], "mid_s": mid, "mid": fmt_time(mid),
                "when": f"{fmt_time(r['start_s'])}-{fmt_time(r['end_s'])}", "modalities": "", "thumb": None,
                "backing": None, "support": None, "votes": []})
    if opts.thumbnails and moments:
        thumbs = stills.thumbnails(f.film_path, [m["mid_s"] for m in moments])
        for m in moments:
            m["thumb"] = thumbs.get(float(m["mid_s"]))
    sources = Counter(r["segment_source"] for r in rows)
    return {
        "film_id": f.film_id, "anchor": _anchor(f.film_id), "film_path": f.film_path, "status": f.status,
        "duration": _duration(f.duration_s), "n_clips": len(rows), "model_versions": list(f.model_versions),
        "sources": ", ".join(f"{n} {s}" for s, n in sources.most_common()) or "none",
        "scored": bool(scored), "arc": arc, "smoothing": charts.smoothing_window(len(scored)), "moments": moments,
        "thumbs_off": not opts.thumbnails,
        # a film of sound alone (no clip has a frame): its moments have no picture, not an unreadable film
        "no_picture": bool(rows) and not any(r.get("n_frames") or "video" in (r.get("damaged") or []) for r in rows),
        "no_moments": no_moments, "grounded": _grounded_text(f), "evidence_recorded": evidence_recorded,
        "guessing": guessing, "clip_table": _clip_rows(scored, opts.max_clip_rows),
        "n_damaged": f.n_damaged, "damage_unknown": bool(f.n_damage_unknown),
        "damaged_stretches": len(charts.damaged_stretches(start, end, damaged)) if scored else 0,
        "clip_more": max(0, len(scored) - opts.max_clip_rows),
    }


def _detail_films(data: tables.OutputData, opts: ReportOptions) -> tuple[list[tables.FilmSummary], int]:
    if opts.films:
        return [data.film(fid) for fid in opts.films], 0
    with_clips = [f for f in data.films if f.n_clips]
    return with_clips[: opts.max_films], max(0, len(with_clips) - opts.max_films)


def render(context: dict) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("pipeline.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    return env.get_template(TEMPLATE).render(**context)


def _state(f: tables.FilmSummary) -> str:
    """A film's status and, where it has one, its error, as a refusal names them."""
    return f.status + (f": {f.error}" if f.error else "")


class ReportInputError(ValueError):
    """The input folder or an option names nothing the report can be built from (the CLI prints it, no traceback)."""


def build_report(input_dir: str, output: str, opts: ReportOptions = ReportOptions()) -> Path:
    """Read an output directory and write the report; returns the report's path."""
    local = local_path(input_dir)
    if local is not None and not os.path.isdir(local):  # a folder with nothing yet is a run that has just begun
        raise ReportInputError(f"no folder {input_dir}: give the --output folder of pipeline.run")
    try:  # before the work: a report that cannot be written is said at once, not after every film is drawn
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportInputError(f"--output {output}: its folder cannot be made ({exc})") from None
    if Path(output).is_dir():  # (before 2026-12-07 said after the work, as "cannot read" its temporary file)
        raise ReportInputError(f"--output {output} is a folder: give the HTML file to write "
                               f"({Path(output) / 'report.html'})")
    data = tables.load_output(input_dir)
    known = {f.film_id: f for f in data.films}
    if opts.explain and opts.explain[0] not in known:
        raise ReportInputError(f"--explain: no film {opts.explain[0]!r} in {input_dir} (film ids: the clips and "
                               "manifest tables' film_id column, or the report's film table)")
    if opts.explain and not known[opts.explain[0]].n_clips:
        f = known[opts.explain[0]]
        raise ReportInputError(f"--explain: {f.film_id} has no clips to explain ({_state(f)})")
    unknown = [fid for fid in opts.films or () if fid not in known]
    if unknown:
        raise ReportInputError(f"--films: no film {', '.join(map(repr, unknown))} in {input_dir} (film ids: the "
                               "clips and manifest tables' film_id column, or the report's film table)")
    # before 2026-12-06 such a film was passed over: the command said it wrote the report, with nothing drawn for it
    without_clips = [known[fid] for fid in opts.films or () if not known[fid].n_clips]
    if without_clips:
        raise ReportInputError("--films: " + "; ".join(f"{f.film_id} has no clips to draw ({_state(f)})"
                                                       for f in without_clips))
    detail, detail_more = _detail_films(data, opts)
    detail_ids = {f.film_id for f in detail}
    table_rows, table_more = _table_rows(data, detail_ids, opts.max_table_rows)
    errors, error_groups, errors_more = _errors(data, opts.max_errors)
    catalogue_figure, chart_note = _catalogue_figure(data, detail or data.films, opts.max_chart_films)
    explain = None
    if opts.explain:
        from pipeline.report import explain as explainer  # loads torch and the models: only when asked
        explain = explainer.explain_clip(input_dir, *opts.explain, head=opts.head, device=opts.device,
                                         run_options=opts.run_options)
        explain.update(grounding=_grounding(explain["row"]), backing=_backing(explain["row"]))
    films = []
    for i, f in enumerate(detail):
        LOG.info("film %d/%d: %s", i + 1, len(detail), f.film_id)
        films.append(_film_section(input_dir, f, opts))
    html = render({
        "title": opts.title, "root": input_dir, "summary": _summary(data),
        "generated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "legend": [{"name": e, "color": EMOTION_COLORS[e]} for e in EMOTIONS],
        "catalogue_figure": catalogue_figure, "catalogue_chart_note": chart_note,
        "grounded_support": GROUNDED_SUPPORT,
        "table_rows": table_rows, "table_more": table_more,
        "errors": errors, "error_groups": error_groups, "errors_more": errors_more,
        "films": films, "detail_more": detail_more, "explain": explain,
    })
    out = Path(output)
    with written_atomically(out) as tmp:  # a reader never sees half a report
        tmp.write_text(html, encoding="utf-8")
    return out
