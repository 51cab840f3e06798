"""The evidence that makes a text poison: a trial the pool runs one call at a time.

```
a call fails ─> each text of it ALONE, on any child ──ok──> answered
 (one text: straight to FRESH)     │ fails
                                   v
                  the text ALONE as the FIRST call of a FRESH child ──ok──> answered
                                   │ fails
                                   v
                  the CONTROL text as the first call of a fresh child
                        │ ok                              │ fails
                        v                                 v
          PoisonText: the text is the cause   the fault strikes whatever the text: the
                                              text gets the WorkerError (transient)
```

A fault that strikes whatever the text cannot convict: a child killed from outside would have
to be killed on both of the text's lone calls, a child that fails its N-th call (N > 1) never
fails a first call, and children that fail every first call fail the control too.

Restart budget: a child failure on a call whose texts go on trial, or during a trial, is a
`PendingCharge`. It is charged once every suspect of that call is acquitted (answered, or
given up), and dropped when one is convicted: the poison text explains it. So a burst of
poison texts never spends the budget, while children that fail whatever they are given still
do (a failed control is charged at once and acquits its suspect).
"""

from __future__ import annotations

import enum
from collections.abc import Callable

CONTROL_TEXT = "Stocks rally as the trade deal is signed"
"""The known-good text of a trial's control call."""


class Stage(enum.Enum):
    """Where a request stands: a caller's texts, or one step of a trial."""

    CALL = "call"  # a caller's texts, not tried yet
    ALONE = "alone"  # one text of a failed call, alone on any child
    FRESH = "fresh"  # that text again, as the first call of a fresh child
    CONTROL = "control"  # the pool's known-good text, as the first call of a fresh child

    @property
    def needs_fresh_child(self) -> bool:
        """Must this request be the first call of its child?

        >>> Stage.FRESH.needs_fresh_child, Stage.ALONE.needs_fresh_child
        (True, False)
        """
        return self in (Stage.FRESH, Stage.CONTROL)

    def after_failure(self, texts: int) -> Stage | None:
        """The next step for a text of a failed call at this stage (None: hear the control).

        >>> Stage.CALL.after_failure(3), Stage.CALL.after_failure(1), Stage.ALONE.after_failure(1)
        (<Stage.ALONE: 'alone'>, <Stage.FRESH: 'fresh'>, <Stage.FRESH: 'fresh'>)
        >>> Stage.FRESH.after_failure(1) is None
        True
        """
        if self is Stage.CALL:
            return Stage.ALONE if texts > 1 else Stage.FRESH
        if self is Stage.ALONE:
            return Stage.FRESH
        return None


class PendingCharge:
    """One child failure, charged to the restart budget once each of its `suspects` is
    acquitted, never if one is convicted.

    >>> charged = []
    >>> pending = PendingCharge(2, lambda: charged.append(1))
    >>> pending.acquitted(); charged
    []
    >>> pending.acquitted(); charged
    [1]
    >>> explained = PendingCharge(2, lambda: charged.append(2))
    >>> explained.convicted(); explained.acquitted(); charged
    [1]
    """

    def __init__(self, suspects: int, charge: Callable[[], None]) -> None:
        self._left = suspects
        self._charge = charge
        self._explained = False

    def acquitted(self) -> None:
        """One suspect is answered or given up: the failure may not be its text's."""
        self._left -= 1
        if self._left == 0 and not self._explained:
            self._charge()

    def convicted(self) -> None:
        """A suspect is poison: it explains the failure, which is not charged."""
        self._explained = True
