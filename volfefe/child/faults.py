"""The test-only fault switch: `VOLFEFE_WORKER_FAULT` makes a child misbehave on purpose.

Off unless the variable is set; read before the heavy imports so boot faults stay fast. The
supervisor's tests and the crash-isolation harness use it to crash, hang or garble a real
child instead of mocking one.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import IO, Any

from volfefe.protocol import EXIT_BOOT_FAILED

Predict = Callable[[Any, Any], Any]  # engine.Predict; numpy is not imported before boot faults

FAULT_VAR = "VOLFEFE_WORKER_FAULT"
FAULT_ONCE_VAR = "VOLFEFE_WORKER_FAULT_ONCE"
GARBAGE = b"\x00this is not json\n"
COUNTED = ("crash", "hang", "garbage")  # request faults that fire on the N-th request


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
    that contains WORD), `garbage-on-usr1` (after a SIGUSR1, write a non-JSON line before the
    next reply: the crash-isolation harness garbles a child of its choice this way). Several
    modes combine with commas: `poison=WORD,garbage-on-usr1`. With
    VOLFEFE_WORKER_FAULT_ONCE=PATH the request faults fire in one child only: the first to
    create PATH.
    """

    def __init__(self, spec: str, once_path: str) -> None:
        self.modes: dict[str, str] = {}
        for part in spec.split(","):
            mode, _, arg = part.partition("@") if "@" in part else part.partition("=")
            self.modes[mode.strip()] = arg
        self.once_path = once_path
        self.requests = 0
        self.model_fault = ""  # "nan" or "oom" while the current request is the faulty one
        self.garble_next = False
        if "garbage-on-usr1" in self.modes:
            signal.signal(signal.SIGUSR1, self._on_usr1)

    def on_boot(self) -> None:
        """Fire the boot-time modes."""
        if "boot-fail" in self.modes:
            print("fault injected: boot-fail", file=sys.stderr)
            sys.exit(EXIT_BOOT_FAILED)
        if "boot-hang" in self.modes:
            _hang()
        if "slow-start" in self.modes:
            time.sleep(float(self.modes["slow-start"]))
        if "stdout-noise" in self.modes:
            print("this stray print must not reach the protocol stream", flush=True)
        if "stderr-flood" in self.modes:
            block = b"x" * (1 << 20)
            for _ in range(int(self.modes["stderr-flood"])):
                os.write(2, block)
            os.write(2, b"\nfault injected: stderr-flood done\n")
        if "ignore-term" in self.modes:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def on_eof(self) -> None:
        """Fire the modes that act when the parent closes stdin."""
        if "ignore-term" in self.modes:
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

    def on_ping(self, out: IO[bytes]) -> None:
        """A ping (an empty request) is not counted; `garbage-on-usr1` still garbles it."""
        if self.garble_next:
            self.garble_next = False
            _garble(out)

    def on_request(self, texts: list[str], out: IO[bytes]) -> None:
        """Fire the request-time modes, counting requests from 1."""
        self.requests += 1
        self.model_fault = ""
        for broken in ("nan", "oom"):
            if broken in self.modes and self.requests == int(self.modes[broken]) and self._claim():
                self.model_fault = broken
                return
        if "delay" in self.modes:
            time.sleep(float(self.modes["delay"]))
        if self.garble_next:
            self.garble_next = False
            _garble(out)
        mode = next((m for m in COUNTED if m in self.modes), None)
        due = mode is not None and self.requests == int(self.modes[mode])
        word = self.modes.get("poison")
        poisoned = word is not None and any(word in t for t in texts)
        if not (due or poisoned) or not self._claim():
            return
        if mode == "garbage" and not poisoned:
            _garble(out)
            return
        if mode == "hang" and not poisoned:
            _hang()
        os.kill(os.getpid(), 9)

    def _on_usr1(self, signum: int, frame: FrameType | None) -> None:
        self.garble_next = True

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


def _garble(out: IO[bytes]) -> None:
    out.write(GARBAGE)
    out.flush()
