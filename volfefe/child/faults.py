"""The test-only fault switch: `VOLFEFE_WORKER_FAULT` makes a child misbehave on purpose.

Off unless the variable is set; read before the heavy imports so boot faults stay fast. The
supervisor's tests use it to crash, hang or garble a real child instead of mocking one.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from volfefe.protocol import EXIT_BOOT_FAILED

Predict = Callable[[Any, Any], Any]  # engine.Predict; numpy is not imported before boot faults

FAULT_VAR = "VOLFEFE_WORKER_FAULT"
FAULT_ONCE_VAR = "VOLFEFE_WORKER_FAULT_ONCE"


def fault_from_env(env: Mapping[str, str]) -> Fault | None:
    """The fault the environment asks for, or None (the normal case)."""
    spec = env.get(FAULT_VAR, "")
    return Fault(spec, env.get(FAULT_ONCE_VAR, "")) if spec else None


class Fault:
    """Test-only failure injection, read from VOLFEFE_WORKER_FAULT before the heavy imports.

    Modes: `boot-fail` (exit 3 before ready), `boot-hang` (never ready), `slow-start=S`
    (sleep S seconds before loading), `stdout-noise` (print junk through `print` before ready,
    which must land on stderr), `stderr-flood=MB` (write one stderr line of MB megabytes,
    no newline until the end, before ready), `ignore-term` (ignore SIGTERM, and hang instead
    of exiting at EOF: only SIGKILL ends it), `delay=S` (sleep S seconds before every reply,
    so a test can act while a run is under way), `crash@N` / `hang@N` / `garbage@N` (on the
    N-th request: SIGKILL itself, hang forever, write a non-JSON line), `nan@N` / `oom@N`
    (on the N-th request the model gives NaN scores / its forward pass raises a RuntimeError
    like CUDA's out of memory), `poison=WORD` (SIGKILL itself on any request holding a text
    that contains WORD). With VOLFEFE_WORKER_FAULT_ONCE=PATH the request faults fire in one
    child only: the first to create PATH.
    """

    def __init__(self, spec: str, once_path: str) -> None:
        self.mode, _, arg = spec.partition("@") if "@" in spec else spec.partition("=")
        self.arg = arg
        self.once_path = once_path
        self.requests = 0
        self.model_fault = ""  # "nan" or "oom" while the current request is the faulty one

    def on_boot(self) -> None:
        """Fire the boot-time modes."""
        if self.mode == "boot-fail":
            print("fault injected: boot-fail", file=sys.stderr)
            sys.exit(EXIT_BOOT_FAILED)
        if self.mode == "boot-hang":
            _hang()
        if self.mode == "slow-start":
            time.sleep(float(self.arg))
        if self.mode == "stdout-noise":
            print("this stray print must not reach the protocol stream", flush=True)
        if self.mode == "stderr-flood":
            block = b"x" * (1 << 20)
            for _ in range(int(self.arg)):
                os.write(2, block)
            os.write(2, b"\nfault injected: stderr-flood done\n")
        if self.mode == "ignore-term":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def on_eof(self) -> None:
        """Fire the modes that act when the parent closes stdin."""
        if self.mode == "ignore-term":
            _hang()

    def wrap_predict(self, predict: Predict) -> Predict:
        """The model's predict, made to fail while `model_fault` is set."""

        import numpy as np

        def faulty(input_ids: Any, attention_mask: Any) -> Any:
            if self.model_fault == "oom":
                raise RuntimeError("CUDA out of memory (fault injected)")
            logits = predict(input_ids, attention_mask)
            if self.model_fault == "nan":
                return np.full_like(logits, np.nan)
            return logits

        return faulty

    def on_request(self, texts: list[str], out: IO[bytes]) -> None:
        """Fire the request-time modes, counting requests from 1."""
        self.requests += 1
        self.model_fault = ""
        if self.mode in ("nan", "oom") and self.requests == int(self.arg) and self._claim():
            self.model_fault = self.mode
            return
        if self.mode == "delay":
            time.sleep(float(self.arg))
            return
        due = self.mode in ("crash", "hang", "garbage") and self.requests == int(self.arg)
        poisoned = self.mode == "poison" and any(self.arg in t for t in texts)
        if not (due or poisoned) or not self._claim():
            return
        if self.mode == "garbage":
            out.write(b"\x00this is not json\n")
            out.flush()
            return
        if self.mode == "hang":
            _hang()
        os.kill(os.getpid(), 9)

    def _claim(self) -> bool:
        if not self.once_path:
            return True
        try:
            os.close(os.open(self.once_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True


def _hang() -> None:
    while True:
        time.sleep(3600)
