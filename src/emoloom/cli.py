"""The ``emoloom`` command. Each subcommand parses its flags, calls one library function and
returns an exit code: 0 on success, 2 on bad input (one line on stderr naming file, line and
field; ``--debug`` shows the traceback).

    emoloom data prepare --corpus goemotions --split dev --out dev.jsonl
    emoloom data prepare --corpus all --split all --out-dir runs/data
    emoloom data stats [--corpus NAME] [--from-dir runs/data] [--json]
    emoloom train configs/default.yaml [key.sub=value ...] [--resume]
    emoloom predict --run runs/default --input rows.jsonl --output preds.jsonl [--resume]
    emoloom eval --run runs/default --corpus goemotions --split test [--resume]
    emoloom screen configs/quick.yaml [key=value ...]
    emoloom report runs/screens/quick [--primary goemotions-test:macro_f1]
    emoloom schema [--label-set goemotions]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from emoloom import __version__
from emoloom.contract import schema
from emoloom.data import SPLITS, LoadedSplit, ReadOptions, load_jsonl, load_split
from emoloom.data.prepare import MAX_REASONS, local_corpora, prepare, prepared_stats, write_jsonl
from emoloom.data.stats import print_stats, split_stats
from emoloom.errors import EmoloomError
from emoloom.labels import LABEL_SETS, get_label_set
from emoloom.lexicon import LEXICON_FILES, WeakVADConfig


def _add_read_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reading")
    g.add_argument("--data-dir", help="corpus directory (default: $EMOLOOM_DATA, ../shared/data)")
    g.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip malformed rows (counted and reported) instead of stopping at the first",
    )
    g.add_argument(
        "--empathetic-input", choices=("situation", "dialogue", "both"), default="situation"
    )
    g.add_argument("--dailydialog-misaligned", choices=("skip", "error"), default="skip")
    g.add_argument("--no-detokenize", action="store_true", help="keep DailyDialog's tokenisation")
    g.add_argument("--max-context-turns", type=int, default=None)
    v = p.add_argument_group("weak VAD")
    v.add_argument("--lexicon", choices=(*LEXICON_FILES, "none"), default="nrc")
    v.add_argument("--blend-weight", type=float, default=WeakVADConfig.blend_weight)
    v.add_argument("--negation-window", type=int, default=WeakVADConfig.negation_window)
    v.add_argument("--min-hits", type=int, default=WeakVADConfig.min_hits)


def _read_options(args: argparse.Namespace) -> tuple[ReadOptions, WeakVADConfig]:
    options = ReadOptions(
        skip_invalid=args.skip_invalid,
        empathetic_input=args.empathetic_input,
        dailydialog_misaligned=args.dailydialog_misaligned,
        dailydialog_detokenize=not args.no_detokenize,
        max_context_turns=args.max_context_turns,
    )
    weak = WeakVADConfig(
        lexicon=args.lexicon,
        blend_weight=args.blend_weight,
        negation_window=args.negation_window,
        min_hits=args.min_hits,
    )
    return options, weak


def _corpora(name: str, data_dir: str | None) -> list[str]:
    if name != "all":
        return [name]
    names = local_corpora(data_dir)
    if not names:
        raise EmoloomError("--corpus all: no corpus folder found (give --data-dir or EMOLOOM_DATA)")
    return names


def _splits(name: str) -> Sequence[str]:
    return SPLITS if name == "all" else [name]


def _report_skips(loaded: LoadedSplit) -> None:
    skipped = loaded.report.skipped
    if skipped:
        print(f"{loaded.corpus}/{loaded.split}: skipped {len(skipped)} row(s):", file=sys.stderr)
        for err in skipped[:MAX_REASONS]:
            print(f"  {err}", file=sys.stderr)


def cmd_prepare(args: argparse.Namespace) -> int:
    options, weak = _read_options(args)
    if args.corpus == "jsonl":
        if not args.input or not args.out:
            raise EmoloomError("--corpus jsonl needs --input FILE and --out FILE")
        label_set = get_label_set(args.label_set) if args.label_set else None
        loaded = [
            load_jsonl(
                args.input,
                label_set=label_set,
                data_dir=args.data_dir,
                options=options,
                weak_vad=weak,
            )
        ]
        write_jsonl(args.out, loaded[0])
    elif args.out:
        if args.corpus == "all" or args.split == "all":
            raise EmoloomError("--out writes one file: name one corpus and split, or use --out-dir")
        loaded = [
            load_split(
                args.corpus, args.split, data_dir=args.data_dir, options=options, weak_vad=weak
            )
        ]
        write_jsonl(args.out, loaded[0])
    elif args.out_dir:
        loaded = prepare(
            _corpora(args.corpus, args.data_dir),
            _splits(args.split),
            out_dir=args.out_dir,
            data_dir=args.data_dir,
            options=options,
            weak_vad=weak,
        )
    else:
        raise EmoloomError("give --out FILE (one corpus and split) or --out-dir DIR")
    for result in loaded:
        _report_skips(result)
        print(
            f"{result.corpus}/{result.split}: {len(result.records):,} records from {result.origin}"
        )
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    options, weak = _read_options(args)
    if args.from_dir:
        stats = prepared_stats(args.from_dir, options=options)
    else:
        stats = []
        for corpus in _corpora(args.corpus, args.data_dir):
            for split in _splits(args.split):
                r = load_split(
                    corpus, split, data_dir=args.data_dir, options=options, weak_vad=weak
                )
                _report_skips(r)
                stats.append(
                    split_stats(r.corpus, r.split, r.records, r.label_set, len(r.report.skipped))
                )
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print_stats(stats)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from emoloom.config import load_config
    from emoloom.trainer import train

    cfg = load_config(args.config, args.overrides)
    result = train(cfg, resume=args.resume)
    print(f"{result.status} at step {result.step} ({result.stopped_by}); run: {result.run_dir}")
    return 0


def _decode_config(args: argparse.Namespace):
    from emoloom.decoding import DecodeConfig

    return DecodeConfig(
        mode=args.mode,
        use_cache=args.kv_cache,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        vad=args.vad,
        labels="calibrated" if getattr(args, "calibration", None) else args.labels,
        calibration_rows=args.calibration_rows,
        vad_hypotheses=args.vad_hypotheses,
    )


def cmd_predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from emoloom.calibration import load as load_calibration
    from emoloom.inference import load_model, make_decoder
    from emoloom.predict import predict_file

    cfg, backbone = load_model(run=args.run, model=args.model)
    label_set = args.label_set or cfg.data.train[0].label_set or cfg.data.train[0].corpus
    name = get_label_set(label_set).name
    decode = _decode_config(args)
    thresholds = None
    if decode.labels == "calibrated":
        if not args.calibration:
            raise EmoloomError(
                "predict --labels calibrated needs --calibration FILE "
                "(written by emoloom eval --labels calibrated under <out>/calibration/)"
            )
        cal = load_calibration(args.calibration)
        if cal.label_set != name:
            raise EmoloomError(
                f"{args.calibration}: thresholds for {cal.label_set}, not for {name}"
            )
        thresholds = {name: cal.thresholds}
    decoder = make_decoder(cfg, backbone, [name], decode, thresholds)
    source = None if args.input in (None, "-") else Path(args.input)
    output = None if args.output in (None, "-") else Path(args.output)
    summary = predict_file(
        decoder, label_set, source, output, resume=args.resume, strict=args.strict
    )
    print(json.dumps(summary.as_dict()), file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from emoloom.evaluate import compare_cache, evaluate, polarity
    from emoloom.inference import load_model
    from emoloom.report_table import print_eval

    cfg, backbone = load_model(run=args.run, model=args.model)
    out = Path(args.out or args.run or f"runs/eval-{Path(args.model).name}")
    decode = _decode_config(args)
    if args.compare_cache:
        result = compare_cache(
            cfg, backbone, args.corpus, args.split, decode, limit=args.limit or 200
        )
        print(json.dumps(result, indent=2))
        return 0
    report = evaluate(
        cfg, backbone, args.corpus, args.split, decode, out_dir=out,
        time_budget=args.time_budget, limit=args.limit, seed=args.seed, resamples=args.resamples,
        resume=args.resume, context_turns=args.context_turns,
    )  # fmt: skip
    if args.polarity:
        report["polarity"] = polarity(
            cfg, backbone, decode, split=args.split, limit=args.limit,
            calibration_dir=out / "calibration",
        )  # fmt: skip
    print_eval(report)
    print(f"wrote {out}/eval/{args.corpus}-{args.split}.json and predictions/", file=sys.stderr)
    return 0


def cmd_screen(args: argparse.Namespace) -> int:
    from emoloom.screen import run_screen

    result = run_screen(args.config, args.overrides, report=not args.no_report)
    done = ", ".join(result.done) or "none"
    print(f"screen {result.screen_dir}: trained and evaluated {done}", file=sys.stderr)
    if result.skipped:
        print(f"  already done, skipped: {', '.join(result.skipped)}", file=sys.stderr)
    if result.report is not None:
        print(f"report: {result.report}")
        print(f"leaderboard: {result.report.parent / 'leaderboard.md'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from emoloom.report import write_report

    paths = write_report(args.screen_dir, primary=args.primary)
    print((paths.markdown).read_text(encoding="utf-8"))
    print(f"report: {paths.html}")
    print(f"leaderboard: {paths.csv} {paths.markdown}")
    return 0


def _add_model_options(p: argparse.ArgumentParser) -> None:
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--run", help="a training run directory (its config and latest weights)")
    who.add_argument("--model", help="an untrained backbone: minilm, a hub id or a local path")


def _add_decode_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decoding")
    g.add_argument("--mode", choices=("constrained", "free"), default="constrained")
    g.add_argument("--kv-cache", action="store_true", help="KV-on decoding (default: KV-off)")
    g.add_argument("--max-new-tokens", type=int, default=96, help="free mode's bound")
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument(
        "--vad",
        choices=("mean", "greedy"),
        default="mean",
        help="constrained VAD numbers: nearest the expected value (default) or greedy tokens",
    )
    g.add_argument(
        "--labels",
        choices=("greedy", "calibrated"),
        default="greedy",
        help="constrained labels: greedy tokens (default) or per-label thresholds fitted on "
        "the corpus's dev split (eval fits and caches them in <out>/calibration/)",
    )
    g.add_argument(
        "--calibration-rows", type=int, default=6000, help="dev rows the thresholds are fit on"
    )
    g.add_argument(
        "--vad-hypotheses",
        type=int,
        default=1,
        metavar="K",
        help="write the VAD averaged over the K most likely first labels, weighted by their "
        "probability (default 1: the VAD the model writes after its own labels)",
    )


def cmd_schema(args: argparse.Namespace) -> int:
    label_set = get_label_set(args.label_set) if args.label_set else None
    print(json.dumps(schema(label_set), indent=2))
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other emoloom error (subparsers inherit the class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"emoloom: error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="emoloom",
        description="Screen small language models for emotion classification + VAD.",
    )
    parser.add_argument("--version", action="version", version=f"emoloom {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    # --debug is accepted after the subcommand too (SUPPRESS keeps the global value otherwise).
    common = _Parser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="prepare corpora as contract JSONL; print statistics")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    prep = data_sub.add_parser(
        "prepare", help="write a corpus split as contract JSONL", parents=[common]
    )
    prep.add_argument(
        "--corpus",
        required=True,
        help="goemotions, empathetic, dailydialog, emobank, jsonl, or all (all found locally)",
    )
    prep.add_argument("--split", default="all", help="train, dev, test or all (default)")
    prep.add_argument("--out", help="output JSONL file (one corpus and split)")
    prep.add_argument("--out-dir", help="output folder: <corpus>/<split>.jsonl + prepare.json")
    prep.add_argument("--input", help="with --corpus jsonl: the contract JSONL to read")
    prep.add_argument("--label-set", choices=tuple(LABEL_SETS), help="with --corpus jsonl")
    _add_read_options(prep)
    prep.set_defaults(func=cmd_prepare)

    stats = data_sub.add_parser(
        "stats", help="per-split counts, labels and VAD provenance", parents=[common]
    )
    stats.add_argument("--corpus", default="all")
    stats.add_argument("--split", default="all")
    stats.add_argument("--from-dir", help="read prepared <corpus>/<split>.jsonl files instead")
    stats.add_argument("--json", action="store_true", help="print JSON instead of tables")
    _add_read_options(stats)
    stats.set_defaults(func=cmd_stats)

    tr = sub.add_parser(
        "train", help="fine-tune a backbone under the EmoLoom recipe", parents=[common]
    )
    tr.add_argument("config", help="YAML config (see configs/)")
    tr.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. optim.lr=1e-4")
    tr.add_argument("--resume", action="store_true", help="continue the run from its checkpoint")
    tr.set_defaults(func=cmd_train)

    pr = sub.add_parser(
        "predict", help="decode contract JSONL into predictions, one row per input row",
        parents=[common],
    )  # fmt: skip
    _add_model_options(pr)
    pr.add_argument("--input", default="-", help="contract JSONL file, or - for stdin")
    pr.add_argument("--output", default="-", help="output JSONL file, or - for stdout")
    pr.add_argument("--label-set", choices=tuple(LABEL_SETS), help="default: the run's first")
    pr.add_argument("--resume", action="store_true", help="continue an interrupted --output")
    pr.add_argument("--strict", action="store_true", help="stop at the first bad input row")
    pr.add_argument(
        "--calibration",
        help="thresholds file from emoloom eval --labels calibrated (implies --labels calibrated)",
    )
    _add_decode_options(pr)
    pr.set_defaults(func=cmd_predict)

    ev = sub.add_parser(
        "eval", help="decode a corpus split and compute the metric set", parents=[common]
    )
    _add_model_options(ev)
    ev.add_argument(
        "--corpus", default="goemotions", help="goemotions, empathetic, dailydialog, emobank"
    )
    ev.add_argument("--split", default="dev")
    ev.add_argument("--time-budget", type=float, help="seconds; label-stratified order")
    ev.add_argument("--limit", type=int, help="evaluate at most N examples")
    ev.add_argument("--seed", type=int, default=0, help="order and bootstrap seed")
    ev.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    ev.add_argument("--out", help="output folder (default: the run directory)")
    ev.add_argument("--polarity", action="store_true", help="also Valence-Flip polarity pairs")
    ev.add_argument("--compare-cache", action="store_true", help="KV-off vs KV-on agreement")
    ev.add_argument("--resume", action="store_true", help="continue an interrupted evaluation")
    ev.add_argument(
        "--context-turns",
        type=int,
        help="prior dialogue turns in the prompt (default: the corpus protocol's choice, "
        "0 for dailydialog, else the run's prompt.max_context_turns)",
    )
    _add_decode_options(ev)
    ev.set_defaults(func=cmd_eval)

    sc = sub.add_parser(
        "screen", help="train and evaluate every candidate of a screen, then report",
        parents=[common],
    )  # fmt: skip
    sc.add_argument("config", help="screen YAML (see configs/quick.yaml)")
    sc.add_argument("overrides", nargs="*", help="key=value overrides of the screen config")
    sc.add_argument("--no-report", action="store_true", help="skip writing the report")
    sc.set_defaults(func=cmd_screen)

    rp = sub.add_parser(
        "report", help="leaderboard (CSV, Markdown) and HTML report of a screen directory",
        parents=[common],
    )  # fmt: skip
    rp.add_argument("screen_dir", help="a screen directory, e.g. runs/screens/quick")
    rp.add_argument("--primary", help="rank by this metric, e.g. goemotions-test:macro_f1")
    rp.set_defaults(func=cmd_report)

    sch = sub.add_parser(
        "schema", help="print the JSON Schema of the input and output contract", parents=[common]
    )
    sch.add_argument("--label-set", choices=tuple(LABEL_SETS), help="restrict output labels")
    sch.set_defaults(func=cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except EmoloomError as err:
        if args.debug:
            raise
        print(f"emoloom: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # disk full, permissions, ...: still one line, still non-zero
        if args.debug:
            raise
        print(f"emoloom: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("emoloom: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
