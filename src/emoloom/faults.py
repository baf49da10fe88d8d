"""Test-only fault injection: SIGKILL this process at a named point in the code.

    EMOLOOM_FAULT=checkpoint.after_weights:2 emoloom train configs/debug.yaml

kills the process the 2nd time it reaches ``fault_point("checkpoint.after_weights")`` (hits
are counted per process). A timer cannot land reliably *inside* a checkpoint write that takes
milliseconds; a named point can, so tests/integration/test_faults.py uses these to prove that a
kill at any of them leaves a run that resumes exactly.

Points in the code:
    train.step.after_backward   trainer: gradients computed, optimizer not yet stepped
    train.between_steps         trainer: a step fully done (logged, checkpointed if due)
    checkpoint.after_weights    checkpoint: weights in the temporary dir, nothing else yet
    checkpoint.before_latest    checkpoint: step dir in place, `latest` not yet moved to it
    predict.between_batches     predict: earlier batches durable, this one not yet decoded
    predict.after_batch_append  predict: a batch appended and fsynced to the partial file
    predict.before_rename       predict: every row in the partial file, not yet renamed
    eval.after_batch            evaluate: a batch appended to the partial log and its state
    screen.before_result        screen: a candidate trained and evaluated, result.json not yet

Without the variable every point is a no-op costing one string comparison. The variable is
read on the first call, not at import, so a process forked after importing emoloom still sees
its own setting.
"""

from __future__ import annotations

import os
import signal

ENV = "EMOLOOM_FAULT"

_target: tuple[str, int] | None = None
_armed = False  # has ENV been read yet?
_hits = 0


def _arm() -> None:
    global _target, _armed
    _armed = True
    spec = os.environ.get(ENV, "")
    if not spec:
        return
    name, _, count = spec.rpartition(":")
    if not name or not count.isdigit() or int(count) < 1:
        raise ValueError(f"{ENV}={spec!r}: expected '<point name>:<n>' with n >= 1")
    _target = (name, int(count))


def fault_point(name: str) -> None:
    """SIGKILL this process if ``EMOLOOM_FAULT`` is ``"<name>:<n>"`` and this is the n-th hit."""
    global _hits
    if not _armed:
        _arm()
    if _target is None or name != _target[0]:
        return
    _hits += 1
    if _hits == _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
