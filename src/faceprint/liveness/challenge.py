"""The challenge: which actions to perform, in which order, each within a time limit.

``left`` and ``right`` are the **user's own** sides, as a prompt says them ("turn your head to
your left"). In an un-mirrored camera frame (what a webcam delivers; getUserMedia previews are
mirrored by CSS only) a user turning to their own left moves the nose toward the *image's right*,
which :mod:`faceprint.pose` reports as ``yaw > 0``; so ``turn_left`` is checked as yaw >= +T and
``turn_right`` as yaw <= -T (:data:`YAW_SIGN`). Checked on lfw_dev: Hugo_Chavez_0003 (+45) and
0006 (-46), Laura_Bush_0002 (+46) and 0011 (-49); docs/research/liveness.md section 2.

A random challenge comes from a CSPRNG (:class:`secrets.SystemRandom`) so that a recording of an
earlier session cannot know the order: no two equal steps follow each other, and with two or more
steps at least one is a blink and one a turn (a flat photo can neither blink nor turn).
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from typing import Any, Literal, get_args

from faceprint.errors import InvalidArgumentError

Action = Literal["blink", "turn_left", "turn_right"]
ACTIONS: tuple[Action, ...] = get_args(Action)

#: The sign of the yaw (:mod:`faceprint.pose`) that answers each turn in an un-mirrored frame.
YAW_SIGN: dict[Action, int] = {"turn_left": +1, "turn_right": -1}

#: Words accepted by :meth:`Challenge.parse` for each action.
ALIASES: dict[str, Action] = {
    "blink": "blink", "turn_left": "turn_left", "left": "turn_left", "turn-left": "turn_left",
    "turn_right": "turn_right", "right": "turn_right", "turn-right": "turn_right",
}

DEFAULT_STEP_TIMEOUT_S = 5.0
#: Most blinks one step asks for.
MAX_BLINKS = 3
#: Most steps a challenge has (a longer one is no safer and only keeps a session open).
MAX_STEPS = 20
_NUMBERS = {1: "once", 2: "twice", 3: "three times"}


def prompt_for(action: Action, count: int = 1) -> str:
    """What to tell the user for one step (left/right in the user's own sense)."""
    if action == "blink":
        return f"Blink {_NUMBERS.get(count, f'{count} times')}"
    side = "left" if action == "turn_left" else "right"
    return f"Turn your head to your {side}, then back to the camera"


@dataclass(frozen=True, slots=True)
class Challenge:
    """Steps to perform in order; ``counts[i]`` is how many blinks step ``i`` wants (1 for a turn;
    ``None``: 1 each). Each step must be completed within ``step_timeout_s`` of its prompt."""

    steps: tuple[Action, ...]
    step_timeout_s: float = DEFAULT_STEP_TIMEOUT_S
    counts: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.steps:
            raise InvalidArgumentError("a challenge needs at least one step")
        if len(self.steps) > MAX_STEPS:
            raise InvalidArgumentError(f"a challenge has at most {MAX_STEPS} steps; got {len(self.steps)}",
                                       details={"steps": len(self.steps), "max_steps": MAX_STEPS})
        bad = [s for s in self.steps if s not in ACTIONS]
        if bad:
            raise InvalidArgumentError(f"unknown action(s) {bad}; choose from {', '.join(ACTIONS)}",
                                       details={"actions": bad})
        if not (self.step_timeout_s > 0 and self.step_timeout_s < 3600):
            raise InvalidArgumentError(f"step_timeout_s must be in (0, 3600); got {self.step_timeout_s}")
        if self.counts is not None:
            if len(self.counts) != len(self.steps):
                raise InvalidArgumentError(f"{len(self.steps)} steps but {len(self.counts)} counts")
            for action, count in zip(self.steps, self.counts):
                if not 1 <= count <= (MAX_BLINKS if action == "blink" else 1):
                    raise InvalidArgumentError(
                        f"a {action} step takes a count of 1" + (f" to {MAX_BLINKS}" if action == "blink" else "")
                        + f"; got {count}", details={"action": action, "count": count})

    def count(self, index: int) -> int:
        """How many times step ``index``'s action must be seen."""
        return 1 if self.counts is None else self.counts[index]

    def prompt(self, index: int) -> str:
        return prompt_for(self.steps[index], self.count(index))

    @property
    def time_limit_s(self) -> float:
        """The longest a whole challenge can take (every step at its limit)."""
        return self.step_timeout_s * len(self.steps)

    def describe(self) -> str:
        """``blink:2,turn_left,turn_right``: what :meth:`parse` reads back."""
        return ",".join(a if self.count(i) == 1 else f"{a}:{self.count(i)}" for i, a in enumerate(self.steps))

    @classmethod
    def parse(cls, text: str, step_timeout_s: float = DEFAULT_STEP_TIMEOUT_S) -> Challenge:
        """A challenge from ``"blink:2,turn_left,turn_right"`` (``left``/``right`` may stand for
        the turns; ``:N`` repeats a blink N times); :class:`InvalidArgumentError` when it cannot."""
        steps: list[Action] = []
        counts: list[int] = []
        for raw in str(text).split(","):
            word, _, times = raw.strip().lower().partition(":")
            action = ALIASES.get(word.strip())
            if action is None:
                raise InvalidArgumentError(
                    f"unknown challenge step {raw.strip()!r}; use blink[:N], turn_left or turn_right, comma-separated",
                    details={"step": raw.strip()})
            try:
                count = int(times) if times else 1
            except ValueError:
                raise InvalidArgumentError(f"{raw.strip()!r}: the count after ':' must be a whole number",
                                           details={"step": raw.strip()}) from None
            steps.append(action)
            counts.append(count)
        return cls(tuple(steps), step_timeout_s, tuple(counts))

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [{"action": a, "count": self.count(i), "prompt": self.prompt(i)} for i, a in enumerate(self.steps)],
            "step_timeout_s": self.step_timeout_s,
            "challenge": self.describe(),
        }


def random_challenge(n_steps: int = 3, rng: random.Random | None = None, *,
                     step_timeout_s: float = DEFAULT_STEP_TIMEOUT_S, max_blinks: int = 2) -> Challenge:
    """``n_steps`` actions drawn from ``rng`` (default a :class:`secrets.SystemRandom`): no two
    equal steps in a row, at least one blink and one turn when ``n_steps >= 2``, each blink step
    asking for 1 to ``max_blinks`` blinks."""
    if not 1 <= n_steps <= MAX_STEPS:
        raise InvalidArgumentError(f"n_steps must be 1 to {MAX_STEPS}; got {n_steps}")
    if not 1 <= max_blinks <= MAX_BLINKS:
        raise InvalidArgumentError(f"max_blinks must be 1 to {MAX_BLINKS}; got {max_blinks}")
    draw = rng if rng is not None else secrets.SystemRandom()
    while True:  # rejection sampling: a few draws at most (P(no blink or no turn) <= 1/2 for 2 steps)
        steps: list[Action] = []
        for _ in range(n_steps):
            steps.append(draw.choice([a for a in ACTIONS if not steps or a != steps[-1]]))
        if n_steps < 2 or ("blink" in steps and any(s != "blink" for s in steps)):
            break
    counts = tuple(draw.randint(1, max_blinks) if a == "blink" else 1 for a in steps)
    return Challenge(tuple(steps), step_timeout_s, counts)
