"""Every option of the project, as one Beam PipelineOptions subclass (`python -m pipeline.run --help`)."""
from __future__ import annotations

import argparse
import difflib
import functools
import hashlib
import json
import math
import re
from typing import Sequence

from apache_beam.options.pipeline_options import PipelineOptions

from model.encoders.versions import TEXT_LANGUAGES
from pipeline.arg_types import io_path, model_arg, name_or_path
from schemas import clips as clips_schema

SEGMENT_CHOICES = ("subtitle", "window", "shot")
TRANSCRIBE_CHOICES = ("auto", "always", "never")

# Options that change what a film's outputs contain; their values go into the config hash that decides skips.
MEDIA_CONFIG_KEYS = ("segment", "frames_per_clip", "frame_every_s", "image_size", "face_width", "skip_nonref",
                     "skip_loop_filter", "window_s", "hop_s", "min_clip_s", "max_clip_s",
                     "context_lines", "shot_threshold", "subtitle_language",
                     "text_languages")  # which subtitle track is read, or whether speech is transcribed instead
ASR_CONFIG_KEYS = ("transcribe", "asr_model", "asr_language")


class FilmEmotionOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        g = parser.add_argument_group("input and output")
        g.add_argument("--input", action="append", default=None, type=io_path,
                       help="Film glob, repeatable: local path or any Beam filesystem (gs://, s3://, ...). "
                            "A directory means every file below it. Subtitle sidecars (.srt, .vtt, .ttml, .scc, .stl, "
                            "...) are not films.")
        g.add_argument("--output", default=None, type=io_path,
                       help="Output directory: clips/, errors/, manifest/, features/, transcripts/ go under it.")
        g.add_argument("--force", action="store_true", default=False,
                       help="Redo every film, even those an earlier run already did with the same content "
                            "and configuration.")
        g.add_argument("--run_id", default=None,
                       help="Name of this run: letters, digits, '.', '_', '-', starting with a letter or digit "
                            "(default: UTC time + random suffix).")

        g = parser.add_argument_group("segmentation")
        g.add_argument("--segment", choices=SEGMENT_CHOICES, default="subtitle",
                       help="subtitle: one clip per dialogue cue (gaps become window clips); window: fixed "
                            "--window_s/--hop_s windows; shot: clips between detected shot cuts.")
        g.add_argument("--window_s", type=float, default=4.0, help="Window clip length in seconds.")
        g.add_argument("--hop_s", type=float, default=None, help="Window hop in seconds (default: --window_s).")
        g.add_argument("--min_clip_s", type=float, default=1.0,
                       help="Shorter cues are merged with neighbours or widened; shorter shots are not cut.")
        g.add_argument("--max_clip_s", type=float, default=8.0, help="Longer cues and shots are split.")
        g.add_argument("--context_lines", type=int, default=3,
                       help="Previous dialogue lines kept with each clip as conversational context.")
        g.add_argument("--shot_threshold", type=float, default=27.0,
                       help="Cut when the mean HSV difference of consecutive frames (0-255) reaches this.")
        g.add_argument("--subtitle_language", default=None,
                       help="Prefer sidecar name.<lang>.srt/.vtt and embedded tracks in this language (e.g. en), "
                            "among those the text path reads (--text_languages).")

        g = parser.add_argument_group("decoding")
        g.add_argument("--frames_per_clip", type=int, default=4,
                       help="At most this many frames sampled evenly through each clip.")
        g.add_argument("--frame_every_s", type=float, default=1.0,
                       help="One sampled frame per this many seconds of clip (1..--frames_per_clip; 0: always "
                            "--frames_per_clip). Near-identical frames of a clip share one ViT pass and face search.")
        g.add_argument("--image_size", type=int, default=224, help="Sampled frames are resized to this square.")
        g.add_argument("--face_width", type=int, default=480,
                       help="Faces are found in a second copy of each sampled frame, this wide at the film's aspect "
                            "(0: in the square --image_size frame).")
        g.add_argument("--decode_all_frames", dest="skip_nonref", action="store_false", default=True,
                       help="Decode every frame. By default frames no other frame refers to (most B-frames) are "
                            "skipped: a sampled frame is then at most a frame or two from its time, and films with "
                            "B-frames decode about a third faster; of an intra-only picture (ProRes, DNxHD, MJPEG, "
                            "JPEG 2000 masters) only the frames beside sample times are decoded (the same clips).")
        g.add_argument("--decode_deblock", dest="skip_loop_filter", action="store_false", default=True,
                       help="Run the codec's deblocking filter. By default it is skipped (H.264, HEVC): a 1080p film "
                            "decodes in about 0.85 of the time, and the frames the models read keep their labels.")
        g.add_argument("--decode_full_size", dest="reduce_size", action="store_false", default=True,
                       help="Decode a JPEG 2000 picture (IMF, DCP) at its full size. By default it is decoded at half "
                            "or a quarter of it where that is still twice the size of every copy the models read: "
                            "2-3 times faster, the frames the models read about 2 grey levels apart on photos.")
        g.add_argument("--decode_threads", type=int, default=None,
                       help="FFmpeg threads decoding each film (0: FFmpeg's choice, one per core). Default when the "
                            "models score on this worker's CPU (they keep every core busy): one thread for films up to "
                            "1080p at 30 fps, which decodes with less CPU, FFmpeg's choice above; otherwise (--device "
                            "cuda, --no_score: decoding is what the run waits on) FFmpeg's choice. Decoded frames are "
                            "the same.")

        g = parser.add_argument_group("scoring")
        g.add_argument("--score", dest="score", action="store_true", default=True,
                       help="Score clips with the encoders and the BVPEC head (default).")
        g.add_argument("--no_score", dest="score", action="store_false",
                       help="Only cut and decode: the clips table's score columns stay null.")
        g.add_argument("--text_model", default=None, type=model_arg,
                       help="Text encoder name or path (default: packaged MiniLM).")
        g.add_argument("--vision_model", default=None, type=model_arg,
                       help="Vision encoder name or path (default: packaged DINOv2 ViT-S/14).")
        g.add_argument("--head", default=None, type=io_path, help="BVPEC head checkpoint (default: the shipped head).")
        g.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="Where the models run.")
        g.add_argument("--precision", choices=("auto", "fp32", "bf16", "int8"), default="auto",
                       help="Encoders' number format. auto: bf16 on GPUs and on CPUs with bf16 instructions "
                            "(AVX512-BF16, AMX), fp32 elsewhere. int8 (CPU): the ViT's Linear layers dynamically "
                            "quantised, faster on CPUs without bf16.")
        g.add_argument("--vision_runtime", choices=("auto", "torch", "openvino"), default="auto",
                       help="Where the ViT runs. auto: OpenVINO on CPU workers in fp32/bf16 (about 1.5x torch's "
                            "speed on a bf16 CPU; tokens equal to torch's within bf16 rounding), torch elsewhere.")
        g.add_argument("--text_runtime", choices=("auto", "torch", "openvino"), default="auto",
                       help="Where the text encoder runs, as --vision_runtime (OpenVINO on CPU: a worker loads it "
                            "in 0.3 s instead of 2.3 s once its IR is cached).")
        g.add_argument("--batch_size", type=int, default=32, help="Clips per model batch.")
        g.add_argument("--torch_threads", type=int, default=1,
                       help="Torch intra-op threads per worker process on CPU (1 avoids oversubscribing cores; 0: "
                            "torch's default, every core).")
        g.add_argument("--accelerator", default=None,
                       help="Beam resource hint for the model steps, e.g. 'type:nvidia-l4;count:1;install-nvidia-driver' "
                            "(default with --device cuda: the scoring module's default).")
        g.add_argument("--modalities", default="text,vision,face,audio",
                       help="Which modalities to encode and fuse (comma list of text, vision, face, audio): the "
                            "rest are missing for the head. Fewer is cheaper (e.g. text,face); also for ablations.")
        g.add_argument("--text_languages", default=",".join(TEXT_LANGUAGES),
                       help="Read only lines in these languages (comma list of codes; 'any': every line). Default: "
                            "the languages the head's text path learnt (the shipped head: en). A line in another "
                            "language (identified from the film's subtitles, their tag or speech recognition) stays in "
                            "the clips table but is not encoded; the clip is scored from its other modalities.")
        g.add_argument("--write_features", action="store_true", default=False,
                       help="Also write features/<film_id>.parquet (encoder tokens) for later re-scoring.")

        g = parser.add_argument_group("speech recognition")
        g.add_argument("--transcribe", choices=TRANSCRIBE_CHOICES, default="auto",
                       help="auto: only films without usable subtitles; always; never.")
        g.add_argument("--asr_model", default=None, type=name_or_path,
                       help="faster-whisper model name or path (default: packaged Whisper base).")
        g.add_argument("--asr_language", default=None,
                       help="Force the spoken language, as a code Whisper knows (en, fr, de, yue, ...; default: "
                            "detect).")
        g.add_argument("--asr_cpu_threads", type=int, default=0,
                       help="CTranslate2 CPU threads for speech recognition (0: --torch_threads, the worker's "
                            "thread budget).")
        g.add_argument("--write_transcripts", action="store_true", default=False,
                       help="Also write transcripts/<film_id>.parquet with the recognised utterances.")


# The groups of options that say how a run cut, decoded, scored and transcribed its films (not where it read and wrote):
# what a command that rebuilds a run's clip takes as the run's options (pipeline.report --explain, add_run_settings).
RUN_SETTING_GROUPS = ("segmentation", "decoding", "scoring", "speech recognition")


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    FilmEmotionOptions._add_argparse_args(parser)
    return parser


def add_run_settings(parser: argparse.ArgumentParser, skip=(), title: str = "the run's options") -> dict[str, str]:
    """Add pipeline.run's options of RUN_SETTING_GROUPS to another command's parser, as pipeline.run defines them
    (flags, types, defaults, help: one definition), except those whose destination is in `skip` (the command has its
    own). Returns {destination: flag} of those added."""
    added: dict[str, str] = {}
    for group in _run_parser()._action_groups:
        if group.title in RUN_SETTING_GROUPS:
            target = parser.add_argument_group(f"{title}: {group.title}")
            for action in group._group_actions:
                if action.dest not in skip:
                    target._add_action(action)
                    added.setdefault(action.dest, action.option_strings[0])
    return added


def run_settings(**values) -> argparse.Namespace:
    """pipeline.run's option values, its defaults with `values` over them, as a namespace that config_hash,
    transforms.decode.DecodeConfig.from_options and transforms.score.ScoreConfig.from_options read."""
    settings = _run_parser().parse_args([])
    vars(settings).update(values)
    return settings


def option_flag(dest: str) -> str:
    """The flag of an option's destination ('skip_nonref' -> '--decode_all_frames')."""
    return next((a.option_strings[0] for a in _run_parser()._actions if a.dest == dest and a.option_strings),
                f"--{dest}")


MIN_IMAGE_SIZE = 28  # two of the ViT's 14 px patches a side
MIN_FACE_WIDTH = 64  # MTCNN's smallest face (20 px) is then a third of the frame: narrower finds nothing
# Bounds past which a value is a typo, not a choice: a --window_s or --hop_s of 1e-6 planned clips until memory ran
# out; an --image_size of 100000 failed every film in FFmpeg's scaler with "Invalid argument"; 10,000 threads made one
# clip 30 times slower (found in review, 2026-12-07)
MIN_SPAN_S = 0.1
MAX_IMAGE_SIZE = 2048
MAX_FACE_WIDTH = 7680
MAX_THREADS = 512
MAX_BATCH = 4096
MAX_FRAMES_PER_CLIP = 64
MODEL_PATH_FLAGS = ("head", "vision_model", "text_model", "asr_model")
LOCAL_RUNNERS = ("direct", "switchingdirect", "bundlebaseddirect", "prism")  # Beam's names, lower case, no "runner"
# The runners that run the job in this process's Beam, which reads every option it parses and passes none on: a flag
# no options class defines is consumed by nothing there (a portable runner's job server may read its own flags).
DIRECT_RUNNERS = ("direct", "switchingdirect", "bundlebaseddirect")


def offline_direct_runner(runner: str | None):
    """The runner object for a local run with Beam's DirectRunner (named, or no --runner), else None (Beam picks the
    named one). Beam 2.77's DirectRunner first tries Prism, whose binary it downloads from GitHub at run time: offline
    that costs a failed lookup (or a connection timeout behind a firewall that drops it), online it runs the job on a
    runner nothing here was tested on. The runner is told it is interactive, the one switch Beam reads to skip Prism;
    it then runs the FnApiRunner, in-process or in worker processes as --direct_running_mode says."""
    if runner is not None and str(runner).lower().replace("runner", "") not in ("direct", "switchingdirect"):
        return None
    from apache_beam.runners.direct.direct_runner import SwitchingDirectRunner
    direct = SwitchingDirectRunner()
    direct.is_interactive()
    return direct


def runs_in_beam_here(runner: str | None) -> bool:
    """Whether --runner (None: Beam's default) is one of the DirectRunners (DIRECT_RUNNERS)."""
    return runner is None or str(runner).lower().replace("runner", "") in DIRECT_RUNNERS


def encoders_loaded(opts: FilmEmotionOptions) -> tuple[str, ...]:
    """The encoders with a --precision and a runtime that a scoring run's workers build: text and vision, as far as
    --modalities asks for them (none under --no_score, or with --modalities unreadable: said apart)."""
    from model.featurize import parse_modalities
    try:
        modalities = parse_modalities(opts.modalities)
    except ValueError:
        return ()
    return tuple(m for m in ("text", "vision") if opts.score and m in modalities)


def number_format_problems(opts: FilmEmotionOptions) -> list[str]:
    """--precision and --vision_runtime / --text_runtime values the workers refuse when they build an encoder, every
    film failing with a traceback (before 2026-12-06 the launch let them pass), by the workers' own rules
    (model.number_formats: torch-free, as the launcher is), for the encoders the run builds (encoders_loaded)."""
    from model.number_formats import number_format_problems as problems
    return problems(opts.device, opts.precision, {e: getattr(opts, f"{e}_runtime") for e in encoders_loaded(opts)})


def cuda_problem(opts: FilmEmotionOptions, runner: str | None) -> str | None:
    """--device cuda on a local runner (the models run in this machine's processes) where torch sees no GPU. With a
    cluster's runner the workers have the GPUs, not the launcher: nothing is checked."""
    local = runner is None or str(runner).lower().replace("runner", "") in LOCAL_RUNNERS
    if opts.device != "cuda" or not local:
        return None
    import torch
    if torch.cuda.is_available():
        return None
    return ("--device cuda: torch sees no CUDA device on this machine, where the DirectRunner runs the models; use "
            "--device cpu, or a runner with GPU workers")


# A run id names folders (manifest/<run_id>/, errors/<run_id>/): no '/' or '..' (rows of one film written over
# another's, or nested a level down), and no leading '_' or '.' (pipeline.report and pyarrow datasets skip those).
# At most 128 characters: it also names the rescore plan's file, and a long one failed as "File name too long" once
# the run was under way (before 2026-12-07).
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# How close an argument Beam does not know must be to one of this project's options to be taken for a misspelling of
# it ('--segmnt' 0.92, '--window' for --window_s 0.86, '--modality' 0.78); runner flags are not that close to ours.
MISSPELT_CUTOFF = 0.75


def run_id_problem(run_id: str | None) -> str | None:
    """What is wrong with a --run_id (None: nothing, or none given: the default is a valid one)."""
    if run_id is None or RUN_ID_PATTERN.fullmatch(run_id):
        return None
    return (f"--run_id {run_id!r}: a run id names folders under manifest/ and errors/; give letters, digits, '.', "
            "'_' and '-', starting with a letter or digit, at most 128 of them")


def window_problem(opts: FilmEmotionOptions) -> str | None:
    """--segment window with windows shorter than --min_clip_s (None: fine, or a length that is wrong on its own and
    said so apart). Each such window joins the one before it (transforms.segment.plan_windows), so the whole film
    became one clip."""
    lengths_valid = 0 < opts.window_s < math.inf and 0 <= opts.min_clip_s < math.inf
    if opts.segment != "window" or not lengths_valid or opts.window_s >= opts.min_clip_s:
        return None
    return (f"--window_s must be >= --min_clip_s with --segment window (got {opts.window_s} and {opts.min_clip_s}): "
            "a shorter window joins the one before it, and the whole film would be one clip")


def asr_language_problem(value: str | None) -> str | None:
    """What is wrong with an --asr_language (None: nothing, or none given): it must be one of the language codes
    faster-whisper knows, else every film's speech recognition failed (AsrChunkError rows) after the launch."""
    if value is None:
        return None
    try:
        from faster_whisper.tokenizer import _LANGUAGE_CODES as whisper_codes
    except ImportError:  # a launcher without faster-whisper: the workers that transcribe have it
        return None
    if value in whisper_codes:
        return None
    from transforms.language import language_code, named_language
    code = language_code(value) or language_code(named_language(value) or "")
    hint = f"; for {value!r} give {code}" if code in whisper_codes else ""
    return (f"--asr_language {value!r} is not a language code Whisper knows: give a lower-case code such as en, fr, "
            f"de or yue{hint}")


def subtitle_language_problem(value: str | None) -> str | None:
    """What is wrong with a --subtitle_language (None: nothing, or none given): a tag the subtitle readers can match
    to a track or sidecar's language, by the rule --text_languages is read with (transforms.language.language_code)."""
    from transforms.language import language_code
    if value is None or language_code(value) is not None:
        return None
    return (f"--subtitle_language {value!r} is not a language tag: give an ISO 639-1 code or a tag such as en, fr, "
            "pt-BR or eng")


def project_option_names() -> list[str]:
    """The names of this project's options, without their dashes ('segment', 'window_s', 'no_score', ...)."""
    return [flag[2:] for action in _run_parser()._actions for flag in action.option_strings if flag.startswith("--")]


def beam_option_values() -> dict[str, object]:
    """Every flag some PipelineOptions class defines, with how many values it takes (argparse's nargs: 0 for a
    switch, None for one value)."""
    return {flag: action.nargs for action in _all_options_parser()._actions for flag in action.option_strings}


def once_only_options() -> set[str]:
    """The flags that take one value, of which a second replaces the first ('--input', '--experiments' gather
    theirs)."""
    import argparse
    return {flag for action in _all_options_parser()._actions for flag in action.option_strings
            if type(action) is argparse._StoreAction and action.nargs is None}  # (Beam's list actions gather too)


@functools.cache
def _all_options_parser():
    """A parser of every PipelineOptions class's flags (as Beam's get_all_options: one class of each name)."""
    from apache_beam.options.pipeline_options import _BeamArgumentParser
    parser = _BeamArgumentParser(allow_abbrev=False)
    classes: dict[str, type] = {}
    for cls in PipelineOptions.__subclasses__():
        classes.setdefault(str(cls), cls)
    for cls in classes.values():
        cls._add_argparse_args(parser)
    return parser


def is_flag(arg: str) -> bool:
    """Whether argparse takes a command-line argument for a flag, not a value: it starts with '--', or with '-' and a
    letter ('-1' is a value)."""
    return arg.startswith("--") or (len(arg) > 1 and arg[0] == "-" and arg[1].isalpha())


def stray_arguments(argv: Sequence[str], nargs: dict[str, object]) -> list[str]:
    """The arguments up to a '--' that are neither a flag nor a flag's value (nargs: beam_option_values): Beam drops
    them with a warning, on every runner. The usual one is a film the shell expanded from an unquoted glob
    (--input archive/*.mp4 gives the first film to --input and drops the rest)."""
    stray, wants = [], 0  # wants: values the last flag still takes (-1: any number)
    for arg in argv:
        if arg == "--":
            break
        if is_flag(arg):
            flag, given = arg.split("=", 1)[0], "=" in arg
            n = nargs.get(flag, None)  # an unknown flag is said apart; its value is taken as one
            wants = 0 if given or n == 0 else -1 if n in ("*", "+") else 1 if n in (None, "?") else int(n)
        elif wants:
            wants -= 1 if wants > 0 else 0
        else:
            stray.append(arg)
    return stray


def meant_option(flag: str, names: Sequence[str], prefixes: bool = False) -> str | None:
    """The project's option an unknown flag was probably meant as (difflib; with `prefixes`, also the one option the
    flag begins, as argparse would take '--seg' for --segment), or None."""
    name = flag.lstrip("-").lower().replace("-", "_")
    meant = difflib.get_close_matches(name, names, n=1, cutoff=MISSPELT_CUTOFF)
    if meant:
        return meant[0]
    begun = [n for n in names if n.startswith(name)] if prefixes and name else []
    return begun[0] if len(begun) == 1 else None


def command_flags(argv: Sequence[str]) -> list[str]:
    """The flags of a command line (is_flag), as written before any '=value', up to a '--'."""
    head = argv[:list(argv).index("--")] if "--" in argv else argv
    return [arg.split("=", 1)[0] for arg in head if is_flag(arg)]


def misspelt_options(argv: Sequence[str]) -> list[str]:
    """One message per flag no options class knows that the run would go on without: Beam only warned ('Discarding
    unparseable args') and the run went on with the defaults ('--segmnt window' cut subtitle clips). On the
    DirectRunner (argv's --runner, or none) nothing else reads a flag, so each such flag is named, with the option
    meant where one is close (before 2026-12-06 only those close to one of ours were: '--seg window', '--threads 2'
    and '--force_all' ran on the defaults). On other runners a flag close to one of ours is named, the rest are left
    to Beam: a runner's job server may read flags of its own."""
    from apache_beam.options.pipeline_options import StandardOptions
    here = runs_in_beam_here(PipelineOptions(list(argv)).view_as(StandardOptions).runner)
    flags = command_flags(argv)
    nargs = beam_option_values()  # (a parser of every options class: built once)
    unknown = [flag for flag in flags if flag not in nargs]
    names, problems = project_option_names(), []
    for flag in unknown:
        meant = meant_option(flag, names, prefixes=here)
        if meant or here:
            problems.append(f"{flag}: no such option" + (f"; did you mean --{meant}?" if meant else ""))
    # arguments no flag takes: before 2026-12-07 dropped with Beam's warning (an unquoted glob scored one film)
    problems += [f"{arg}: an argument no option takes (an --input glob the shell expanded? quote it: --input "
                 f"'archive/*.mp4')" for arg in stray_arguments(argv, nargs)]
    # a value given twice: the last won without a word ('--output a --output b', an option set in a nightly script
    # and again on its command line)
    twice = [f for f in dict.fromkeys(flags) if flags.count(f) > 1 and f in once_only_options()]
    problems += [f"{f}: given {flags.count(f)} times; give it once (only the last would count)" for f in twice]
    if here and "--" in argv and argv.index("--") < len(argv) - 1:  # Beam drops them too, and nothing else reads them
        problems.append(f"--: nothing reads the arguments after it on the DirectRunner "
                        f"({' '.join(argv[argv.index('--') + 1:])})")
    return problems


# Options only a cluster runner reads, and what a local run has instead. Beam takes them on the DirectRunner without
# a word: '--num_workers 8' on a local run looked like eight workers and ran on the default one (2026-12-07 review).
OTHER_RUNNERS = {"GoogleCloudOptions": "Dataflow", "WorkerOptions": "Dataflow", "FlinkRunnerOptions": "Flink",
                 "SparkRunnerOptions": "Spark"}
LOCAL_WORKERS = "--direct_num_workers N --direct_running_mode multi_processing"
# ...but Google Cloud's storage and credentials options are read by any runner that reads gs:// (a local run over a
# bucket: --project, --impersonate_service_account), and --temp_location by some IOs
READ_BY_ANY_RUNNER = ("gcs", "gcp", "auth", "project", "impersonate", "bucket", "temp_location",
                      # ...and the SDK worker's own settings, which the DirectRunner's worker processes read too
                      "sdk_harness", "max_cache_memory", "element_processing_timeout")


def other_runner_options(argv: Sequence[str]) -> list[str]:
    """One warning per flag of argv that only another runner reads (OTHER_RUNNERS), when the run is local (argv's
    --runner a DirectRunner, or none): the run goes on without it."""
    from apache_beam.options.pipeline_options import StandardOptions
    if not runs_in_beam_here(PipelineOptions(list(argv)).view_as(StandardOptions).runner):
        return []
    given = set(command_flags(argv))
    return [f"{flag}: a {runner} option, which the DirectRunner does not read; the run goes on without it"
            + (f" (workers on this machine: {LOCAL_WORKERS})" if flag.endswith("num_workers") else "")
            for flag, runner in _other_runner_flags().items() if flag in given]


@functools.cache
def _other_runner_flags() -> dict[str, str]:
    """flag -> the runner whose options class (OTHER_RUNNERS) defines it."""
    import argparse
    out: dict[str, str] = {}
    for cls in PipelineOptions.__subclasses__():
        if cls.__name__ in OTHER_RUNNERS:
            parser = argparse.ArgumentParser(add_help=False)
            cls._add_argparse_args(parser)
            for action in parser._actions:
                out.update({flag: OTHER_RUNNERS[cls.__name__] for flag in action.option_strings
                            if not any(word in flag for word in READ_BY_ANY_RUNNER)})
    return out


def unlearnt_modality_problem(opts: FilmEmotionOptions) -> str | None:
    """--modalities asking for a modality the --head did not learn (model.checkpoints.unlearnt_modalities_problem).
    Read only for a local --head given (the shipped head learnt all four, so a default launch imports no torch) and
    when the run scores; a --head on gs:// or s3:// is read where the run scores, as head_problem leaves it."""
    from model.encoders.versions import is_url
    from model.featurize import parse_modalities
    if not opts.head or not opts.score or is_url(opts.head):
        return None
    try:
        modalities = parse_modalities(opts.modalities)
    except ValueError:
        return None  # (said by option_problems)
    from model.checkpoints import unlearnt_modalities_problem
    return unlearnt_modalities_problem(opts.head, modalities)


def option_problems(opts: FilmEmotionOptions, runner: str | None = "") -> list[str]:
    """What is wrong with the values of the options (empty: nothing). Checked when a run starts, so a value no film
    can be cut or scored with stops the launch with one message, not a failed row for every film of a catalogue
    (--window_s 0, a model path that is not there) or a run that quietly scores nothing (--frames_per_clip 0,
    --face_width 10). runner: the run's --runner, for the --device cuda check ("": not checked)."""
    from model.featurize import parse_modalities
    from pipeline.arg_types import head_problem, missing_model_path, model_url_problem
    from transforms.language import parse_text_languages
    problems = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)
    # (seconds and thresholds must be finite too: --hop_s inf cut one window per gap, and a run went on so)
    need(MIN_SPAN_S <= opts.window_s < math.inf, f"--window_s must be >= {MIN_SPAN_S} s (got {opts.window_s})")
    need(opts.hop_s is None or MIN_SPAN_S <= opts.hop_s < math.inf,
         f"--hop_s must be >= {MIN_SPAN_S} s (got {opts.hop_s})")
    need(0 <= opts.min_clip_s < math.inf, f"--min_clip_s must be >= 0 (got {opts.min_clip_s})")
    need(opts.min_clip_s <= opts.max_clip_s < math.inf and opts.max_clip_s > 0,
         f"--max_clip_s must be > 0 and >= --min_clip_s (got {opts.max_clip_s} and {opts.min_clip_s})")
    need(opts.context_lines >= 0, f"--context_lines must be >= 0 (got {opts.context_lines})")
    need(0 < opts.shot_threshold < math.inf, f"--shot_threshold must be > 0 (got {opts.shot_threshold})")
    need(opts.frames_per_clip >= 1, f"--frames_per_clip must be >= 1 (got {opts.frames_per_clip}; "
                                    "--modalities text,audio scores without frames)")
    need(opts.frames_per_clip <= MAX_FRAMES_PER_CLIP,
         f"--frames_per_clip must be <= {MAX_FRAMES_PER_CLIP} (got {opts.frames_per_clip})")
    need(0 <= opts.frame_every_s < math.inf, f"--frame_every_s must be >= 0 (got {opts.frame_every_s})")
    need(MIN_IMAGE_SIZE <= opts.image_size <= MAX_IMAGE_SIZE,
         f"--image_size must be {MIN_IMAGE_SIZE}-{MAX_IMAGE_SIZE} (got {opts.image_size})")
    need(opts.face_width == 0 or MIN_FACE_WIDTH <= opts.face_width <= MAX_FACE_WIDTH,
         f"--face_width must be 0 (the square frame) or {MIN_FACE_WIDTH}-{MAX_FACE_WIDTH} (got {opts.face_width})")
    need(opts.decode_threads is None or 0 <= opts.decode_threads <= MAX_THREADS,
         f"--decode_threads must be 0-{MAX_THREADS} (got {opts.decode_threads})")
    need(1 <= opts.batch_size <= MAX_BATCH, f"--batch_size must be 1-{MAX_BATCH} (got {opts.batch_size})")
    need(0 <= opts.torch_threads <= MAX_THREADS, f"--torch_threads must be 0-{MAX_THREADS} (got {opts.torch_threads})")
    need(0 <= opts.asr_cpu_threads <= MAX_THREADS,
         f"--asr_cpu_threads must be 0-{MAX_THREADS} (got {opts.asr_cpu_threads})")
    # '' (an unset shell variable) read every language: 'any' says so
    need(not isinstance(opts.text_languages, str) or opts.text_languages.strip(" ,") != "",
         "--text_languages is empty: give the codes of the languages to read (en, fr, ...) or 'any'")
    for problem in (window_problem(opts), run_id_problem(opts.run_id), asr_language_problem(opts.asr_language),
                    subtitle_language_problem(opts.subtitle_language)):
        need(problem is None, problem or "")
    for flag, parse in (("modalities", parse_modalities), ("text_languages", parse_text_languages)):
        try:
            parse(getattr(opts, flag))
        except ValueError as exc:
            problems.append(str(exc) if str(exc).startswith("--") else f"--{flag}: {exc}")
    for flag in MODEL_PATH_FLAGS:
        need(missing_model_path(getattr(opts, flag)) is None, f"--{flag} {getattr(opts, flag)}: no such file or folder")
    for flag in ("text_model", "vision_model", "asr_model"):  # (a remote --head is read through FileSystems)
        remote = model_url_problem(getattr(opts, flag))
        need(remote is None, f"--{flag} {getattr(opts, flag)}: {remote}")
    bad_head = head_problem(opts.head) if missing_model_path(opts.head) is None else None  # missing: said above
    need(bad_head is None, f"--head {bad_head}")
    if bad_head is None and missing_model_path(opts.head) is None:  # a head that loads: what it learnt
        unlearnt = unlearnt_modality_problem(opts)
        need(unlearnt is None, unlearnt or "")
    problems += number_format_problems(opts)
    if runner != "":
        cuda = cuda_problem(opts, runner)
        need(cuda is None, cuda or "")
    return problems


def spelt_once(config: dict) -> dict:
    """The language options as the run reads them, so that a nightly job whose options are respelt ('EN' for 'en',
    'en, fr' for 'en,fr', 'eng', 'en-US' for a preferred subtitle language) does not redo its catalogue: before
    2026-12-07 the hash took the strings as typed. The usual spellings are their own canonical form (their hashes
    are unchanged); the order of --text_languages is kept (it is hashed into model_version as given)."""
    from transforms.language import language_code, parse_text_languages
    out = {}
    if "text_languages" in config:
        try:
            out["text_languages"] = ",".join(parse_text_languages(config["text_languages"])) or "any"
        except ValueError:  # refused at launch (options_problems); kept as typed here
            pass
    wanted = config.get("subtitle_language")
    if isinstance(wanted, str) and wanted.strip():  # sidecars and tracks are matched by code (transforms.subtitles)
        out["subtitle_language"] = language_code(wanted) or wanted.strip().lower()
    return out


def config_hash(opts: FilmEmotionOptions, model_version: str | None = None) -> str:
    """Short hash of everything that shapes a film's outputs: a change means films are redone."""
    keys = MEDIA_CONFIG_KEYS + (ASR_CONFIG_KEYS if opts.transcribe != "never" else ("transcribe",))
    config = {k: getattr(opts, k) for k in keys}
    config.update(spelt_once(config))
    from model.featurize import parse_modalities
    if "text" not in parse_modalities(opts.modalities):  # subtitles are then read in any language (pipeline.run):
        config["text_languages"] = "any"  # under --no_score no model_version carries --modalities
    config["clips_schema"] = clips_schema.REDO_VERSION
    from transforms.dialogue import DIALOGUE_RULE  # which subtitle text is read as dialogue
    config["dialogue_rule"] = DIALOGUE_RULE
    from transforms.decode import DECODE_RULE  # how samples are taken from a film (the mono downmix)
    config["decode_rule"] = DECODE_RULE
    if opts.segment != "subtitle":
        from transforms.decode import WINDOW_TEXT_RULE  # which words windows and shots read
        config["window_text_rule"] = WINDOW_TEXT_RULE
    else:
        from transforms.segment import PIECE_TEXT_RULE  # which words the pieces of a long line read
        config["piece_text_rule"] = PIECE_TEXT_RULE
    if opts.transcribe != "never":
        from transforms.transcribe import ASR_RULE  # which lines speech recognition gives
        config["asr_rule"] = ASR_RULE
    if not getattr(opts, "reduce_size", True):  # (only when set: the hashes of earlier runs stay as they were)
        config["decode_full_size"] = True
    config["model_version"] = model_version
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]
