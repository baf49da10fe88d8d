"""Crash consistency: training and batch prediction are SIGKILLed five times each, at seeded
random moments (inside a step, mid-checkpoint, between steps; between batches, after an append,
before the final rename), resumed with ``--resume`` after every kill, and must end exactly where
an uninterrupted run ends: the same weights and losses, the same prediction file byte for byte.

The moments are named kill points of `emoloom.faults` (``EMOLOOM_FAULT=<point>:<n>`` kills at
the n-th hit, counted per process), drawn by `random.Random(SEED)`, so a failure names a
schedule that reproduces. A timer cannot land inside a millisecond checkpoint write; a named
point can. One purely time-based kill (seeded delay) is added on top for training.

The killed runs are forks of one interpreter that has already imported emoloom (see
`cli_fork`): each is its own process running `emoloom.cli.main(argv)` and dies by a real
SIGKILL, but a dozen of them no longer pay ~7 s each importing torch, transformers and peft.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_training import (
    DEBUG,
    EMOLOOM,
    ROOT,
    _write_jsonl,
    cfg_for,
    losses,
    overrides,
    weights_hash,
)

from emoloom import cli, faults
from emoloom.checkpoint import checkpoint_dir, latest_checkpoint, load_checkpoint
from emoloom.errors import EmoloomError
from emoloom.faults import fault_point
from emoloom.trainer import train

SEED = 20260
KILLS = 5
KILLED = -signal.SIGKILL  # subprocess reports death by signal N as returncode -N


@dataclass(frozen=True)
class Moment:
    point: str
    n: int  # the n-th hit of `point` in the process that is killed
    start: int  # progress when that process started (latest checkpoint step, or rows done)
    after: int  # progress a resume finds after the kill

    def __str__(self) -> str:
        return f"{self.point}:{self.n} (from {self.start}, leaves {self.after})"


def _describe(moments: list[Moment]) -> str:
    return f"schedule (seed {SEED}): {', '.join(map(str, moments))}"


# (point, n, start, kills left after this one) -> progress left behind, or None if the process
# would finish (or the schedule would run out of room) before reaching the n-th hit
Outcome = Callable[[str, int, int, int], int | None]


def draw_moments(rng: random.Random, points: tuple[str, ...], outcome: Outcome) -> list[Moment]:
    """`KILLS` consecutive kill moments covering every point; each starts where the last ended."""
    while True:
        order = [*points, *(rng.choice(points) for _ in range(KILLS - len(points)))]
        rng.shuffle(order)
        moments, progress = [], 0
        for i, wanted in enumerate(order):
            left = KILLS - 1 - i
            options = [(p, n) for p in points for n in range(1, 64) if outcome(p, n, progress, left) is not None]  # fmt: skip
            preferred = [(p, n) for p, n in options if p == wanted]
            point, n = rng.choice(preferred or options)
            after = outcome(point, n, progress, left)
            moments.append(Moment(point, n, progress, after))
            progress = after
        if {m.point for m in moments} == set(points):
            return moments


def _env(fault: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != faults.ENV}
    env["HF_HUB_OFFLINE"] = "1"
    if fault:
        env[faults.ENV] = fault
    return env


def _run(argv: list[str], fault: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, env=_env(fault), capture_output=True, text=True, timeout=600)  # fmt: skip


# Reads one job per stdin line, forks, and in the child does what `python -m emoloom.cli ARGV`
# does, minus the imports; answers with the child's exit code (-9 when SIGKILLed). The faults
# module reads EMOLOOM_FAULT at its first fault_point call, so the child's setting applies.
ZYGOTE = textwrap.dedent("""
    import json, os, sys, traceback
    import emoloom.cli, emoloom.inference, emoloom.predict, emoloom.trainer

    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.environ.pop("EMOLOOM_FAULT", None)
                os.environ.update(job["env"])
                log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                os.dup2(log, 1)
                os.dup2(log, 2)
                code = emoloom.cli.main(job["argv"])
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
""")


@pytest.fixture(scope="module")
def cli_fork(tmp_path_factory):
    """`run(args, fault) -> (exit code, output)`: `emoloom ARGS` in a fork of a warm interpreter."""
    logs = tmp_path_factory.mktemp("logs")
    zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE], cwd=ROOT, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    count = 0

    def run(args: list[str], fault: str | None = None) -> tuple[int, str]:
        nonlocal count
        count += 1
        log = logs / f"{count:02d}.log"
        env = {faults.ENV: fault} if fault else {}
        zygote.stdin.write(json.dumps({"argv": args, "env": env, "log": str(log)}) + "\n")
        zygote.stdin.flush()
        code = zygote.stdout.readline()
        assert code, f"the forking interpreter died (exit {zygote.wait()})"
        return int(code), log.read_text()

    yield run
    zygote.stdin.close()
    zygote.wait(timeout=60)


# ---------------------------------------------------------------------------------- fault_point


def test_fault_point_is_a_no_op_without_the_variable(monkeypatch):
    monkeypatch.delenv(faults.ENV, raising=False)
    monkeypatch.setattr(faults, "_armed", False)
    monkeypatch.setattr(faults, "_target", None)
    monkeypatch.setattr(faults, "_hits", 0)
    for _ in range(3):
        fault_point("checkpoint.after_weights")
    assert faults._armed and faults._target is None and faults._hits == 0


COUNTER = textwrap.dedent("""
    from emoloom.faults import fault_point
    for i in range(1, 6):
        print(i, flush=True)
        fault_point("a")
        fault_point("b")
""")


@pytest.mark.slow
@pytest.mark.parametrize(
    "spec, printed, returncode",
    [
        ("a:3", "1 2 3", KILLED),  # the 3rd hit of "a" kills, not the 3rd point reached
        ("b:1", "1", KILLED),
        ("a:5", "1 2 3 4 5", KILLED),
        ("c:1", "1 2 3 4 5", 0),  # a point never reached never kills
        (None, "1 2 3 4 5", 0),
    ],
    ids=["a:3", "b:1", "a:5", "never-reached", "unset"],
)
def test_fault_point_kills_with_sigkill_at_the_nth_hit_of_its_name(spec, printed, returncode):
    done = _run([sys.executable, "-c", COUNTER], spec)
    assert (done.stdout.split(), done.returncode) == (printed.split(), returncode), done.stderr


@pytest.mark.slow
def test_a_malformed_fault_spec_is_an_error_not_a_silent_no_op():
    done = _run([sys.executable, "-c", COUNTER], "a")
    assert done.returncode == 1 and "expected '<point name>:<n>'" in done.stderr


# ------------------------------------------------------------------------------------ training

STEPS, EVERY = 10, 2  # checkpoints at 2, 4, 6, 8, 10
ROOM = 6  # the named kills leave latest <= ROOM, so the timed kill finds a run still going
TRAIN_POINTS = (
    "train.step.after_backward",
    "checkpoint.after_weights",
    "checkpoint.before_latest",
    "train.between_steps",
)


def train_outcome(point: str, n: int, start: int, left: int) -> int | None:
    """Latest committed step after killing a run resumed from `start` at the n-th `point`;
    None if out of reach, or if it skips more than one checkpoint (spreads the kills out)."""
    if point == "train.step.after_backward":  # dies inside step start + n
        step = start + n
        after = (step - 1) // EVERY * EVERY
    elif point == "train.between_steps":  # dies after step start + n is done
        step = start + n
        after = step // EVERY * EVERY
    else:  # dies writing the n-th checkpoint of this process
        step = start + n * EVERY
        after = step - EVERY
    return after if step <= STEPS and after <= ROOM and after - start <= EVERY else None


def _latest_step(run: Path) -> int:
    latest = latest_checkpoint(run)
    return int(latest.name.removeprefix("step-")) if latest is not None else 0


def _check_after_kill(run: Path, moment: Moment, where: str) -> None:
    try:
        latest = latest_checkpoint(run)  # refuses a `latest` that names an incomplete checkpoint
    except EmoloomError as err:
        pytest.fail(f"{where}: {err}")
    if moment.after == 0:
        assert latest is None, where
    else:
        assert latest is not None and latest.name == f"step-{moment.after:06d}", where
        _, _, state = load_checkpoint(latest)  # the previous complete checkpoint loads
        assert state["step"] == moment.after, where
    torn = moment.after + EVERY
    if moment.point == "checkpoint.after_weights":  # the half-written dir is there, unnamed
        tmp = checkpoint_dir(run) / f".step-{torn:06d}.tmp"
        assert (tmp / "model.safetensors").is_file() and not (tmp / "state.json").exists(), where
    if moment.point == "checkpoint.before_latest":  # complete and in place, yet not `latest`
        assert (checkpoint_dir(run) / f"step-{torn:06d}" / "state.json").is_file(), where


def _kill_mid_run(argv: list[str], run: Path, rng: random.Random) -> tuple[bool, int]:
    """Resume, wait until this process has logged `k` new steps, SIGKILL it after a seeded
    delay. Returns (whether the kill landed, latest step it left)."""
    manifest = run / "manifest.json"
    before, start = _identity(manifest), _latest_step(run)
    k, delay = rng.randint(1, 2), rng.uniform(0.0, 0.1)
    proc = subprocess.Popen(argv, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 300
    # setup rewrites the manifest after trimming metrics.jsonl back to the checkpoint, so only
    # then do new lines count
    while time.monotonic() < deadline and proc.poll() is None:
        if _identity(manifest) != before and metrics.read_text().count("\n") >= start + k:
            break
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)  # a no-op if it has finished already
    code = proc.wait()
    assert code in (KILLED, 0)
    return code == KILLED, _latest_step(run)


def _identity(path: Path) -> tuple[int, int]:
    stat = path.stat()  # an atomic rewrite makes a new inode
    return stat.st_ino, stat.st_mtime_ns


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return _write_jsonl(root / "train.jsonl", 6), _write_jsonl(root / "dev.jsonl", 1)


@pytest.mark.slow
@pytest.mark.integration
def test_training_killed_at_five_random_moments_resumes_to_the_uninterrupted_run(
    data, tmp_path, cli_fork
):
    extra = (f"budget.max_steps={STEPS}", f"optim.schedule_steps={STEPS}", f"checkpoint_every={EVERY}")  # fmt: skip
    cfg = cfg_for(data, tmp_path / "straight", *extra)
    assert cfg.keep_checkpoints == 2
    straight = train(cfg)
    moments = draw_moments(random.Random(SEED), TRAIN_POINTS, train_outcome)
    run = tmp_path / "killed" / "tiny"
    args = ["train", str(DEBUG), *overrides(data, tmp_path / "killed", *extra)]
    for i, moment in enumerate(moments):
        where = f"kill {i + 1} at {moment}; {_describe(moments)}"
        code, output = cli_fork([*args, *(["--resume"] if i else [])], f"{moment.point}:{moment.n}")
        assert code == KILLED, f"{where}: exit {code}\n{output[-2000:]}"
        _check_after_kill(run, moment, where)

    # the timed kill: a plain `python -m emoloom.cli` process, as a user would start it
    landed, left = _kill_mid_run([*EMOLOOM, *args, "--resume"], run, random.Random(f"{SEED}:timed"))
    schedule = f"{_describe(moments)}; timed kill landed={landed}, left step {left}"
    print(schedule)  # shown with -s, or on failure
    code, output = cli_fork([*args, "--resume"])
    assert code == 0, f"{schedule}\n{output[-2000:]}"
    assert weights_hash(run) == weights_hash(straight.run_dir), schedule
    assert losses(run) == losses(straight.run_dir), schedule
    # every partial checkpoint was cleaned up; only the kept, complete ones remain
    names = sorted(p.name for p in checkpoint_dir(run).iterdir())
    assert [n for n in names if n.startswith(".step-")] == [], schedule
    assert [n for n in names if not n.startswith(".")] == ["latest", f"step-{STEPS - EVERY:06d}", f"step-{STEPS:06d}"], schedule  # fmt: skip
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed", schedule


# ------------------------------------------------------------------------------------- predict

ROWS, BATCH = 40, 4
PREDICT_POINTS = ("predict.between_batches", "predict.after_batch_append", "predict.before_rename")


def predict_outcome(point: str, n: int, start: int, left: int) -> int | None:
    """Rows in the partial file after killing a predict resumed with `start` rows at `point`;
    None if out of reach or more than three batches ahead (spreads the kills out)."""
    if point == "predict.before_rename":  # every row written: keep it for the last kill
        return ROWS if n == 1 and left == 0 else None
    if point == "predict.between_batches":  # dies before decoding batch n
        after = start + (n - 1) * BATCH
    else:  # dies right after batch n is appended and fsynced
        after = start + n * BATCH
    return after if after < ROWS and after - start <= 3 * BATCH else None


@pytest.mark.slow
@pytest.mark.integration
def test_predict_killed_at_five_random_moments_resumes_to_the_same_file(tmp_path, cli_fork):
    lines = [json.dumps({"id": f"r{i}", "text": f"row {i} feels fine today"}) for i in range(ROWS)]
    lines[13] = json.dumps({"id": "r13"})  # an invalid record: its error row survives resumes
    source = tmp_path / "in.jsonl"
    source.write_text("".join(line + "\n" for line in lines))
    # free decoding of 4 tokens: a cheap decode per row; the file handling under test is the same
    args = ["predict", "--model", "tiny-qwen2", "--label-set", "goemotions", "--input", str(source), "--batch-size", str(BATCH), "--mode", "free", "--max-new-tokens", "4"]  # fmt: skip
    straight = tmp_path / "straight.jsonl"
    assert cli.main([*args, "--output", str(straight)]) == 0
    expected = straight.read_bytes().splitlines(keepends=True)
    assert len(expected) == ROWS

    moments = draw_moments(random.Random(SEED), PREDICT_POINTS, predict_outcome)
    out, partial = tmp_path / "out.jsonl", tmp_path / "out.jsonl.partial"
    args = [*args, "--output", str(out)]
    for i, moment in enumerate(moments):
        where = f"kill {i + 1} at {moment}; {_describe(moments)}"
        code, output = cli_fork([*args, *(["--resume"] if i else [])], f"{moment.point}:{moment.n}")
        assert code == KILLED, f"{where}: exit {code}\n{output[-2000:]}"
        assert not out.exists(), where  # the output appears only complete
        assert partial.read_bytes() == b"".join(expected[: moment.after]), where

    code, output = cli_fork([*args, "--resume"])
    schedule = _describe(moments)
    print(schedule)
    assert code == 0, f"{schedule}\n{output[-2000:]}"
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert ids == [f"r{i}" for i in range(ROWS)], schedule  # one row per input id, in order
    assert out.read_bytes() == straight.read_bytes(), schedule
    assert not partial.exists(), schedule


# -------------------------------------------------------------------------------------- screen

# Each kill lands in a fresh process that resumes the screen left by the one before (hits count
# per process): tiny screen of test_screen.py, candidates qwen (4 steps), llama, qwen-no-vad-loss.
SCREEN_KILLS = (
    ("train.between_steps:6", "llama trained to step 2 (qwen done)"),
    ("eval.after_batch:3", "llama resumed to step 4, killed in its third evaluation set"),
    ("screen.before_result:1", "llama evaluated, result.json not yet written"),
    ("train.step.after_backward:3", "inside step 3 of qwen-no-vad-loss"),
)


@pytest.mark.slow
@pytest.mark.integration
def test_a_screen_killed_mid_candidate_resumes_to_the_uninterrupted_leaderboard(tmp_path, cli_fork):
    from test_screen import EVAL_SETS, reproducible, screen_yaml

    from emoloom.report import leaderboard
    from emoloom.screen import run_screen

    for sub in ("straight", "killed"):
        (tmp_path / sub).mkdir()
    reference = run_screen(screen_yaml(tmp_path / "straight")).screen_dir
    path = screen_yaml(tmp_path / "killed")
    screen_dir = tmp_path / "killed" / "screens" / "tiny"
    done: dict[str, bytes] = {}  # result.json of candidates finished before a later kill
    for fault, moment in SCREEN_KILLS:
        code, output = cli_fork(["screen", str(path)], fault)
        assert code == -signal.SIGKILL, f"{fault} ({moment}) never fired: exit {code}\n{output}"
        for name, blob in done.items():  # finished work is never redone or rewritten
            assert (screen_dir / "candidates" / name / "result.json").read_bytes() == blob
        for result in (screen_dir / "candidates").glob("*/result.json"):
            done.setdefault(result.parent.name, result.read_bytes())
    assert sorted(done) == ["llama", "qwen"]
    code, output = cli_fork(["screen", str(path)])
    assert code == 0, output
    for name, blob in done.items():
        assert (screen_dir / "candidates" / name / "result.json").read_bytes() == blob
    assert reproducible(leaderboard(screen_dir)) == reproducible(leaderboard(reference))
    for name in ("qwen", "llama", "qwen-no-vad-loss"):
        for s in EVAL_SETS:
            rel = f"candidates/{name}/predictions/{s}.jsonl"
            assert (screen_dir / rel).read_bytes() == (reference / rel).read_bytes(), rel
    assert not list(screen_dir.rglob("*.partial*")) and not list(screen_dir.rglob("*.tmp"))
