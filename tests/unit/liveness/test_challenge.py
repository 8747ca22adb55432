"""Challenges: parsing, prompts, and random ones from a CSPRNG."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from faceprint.errors import InvalidArgumentError
from faceprint.liveness.challenge import ACTIONS, YAW_SIGN, Challenge, random_challenge


def test_parse_reads_steps_counts_and_aliases():
    c = Challenge.parse("blink:2, left,RIGHT,blink", step_timeout_s=4)
    assert c.steps == ("blink", "turn_left", "turn_right", "blink")
    assert [c.count(i) for i in range(4)] == [2, 1, 1, 1]
    assert c.describe() == "blink:2,turn_left,turn_right,blink"
    assert Challenge.parse(c.describe(), 4) == c
    assert c.time_limit_s == 16


def test_to_dict_gives_each_step_with_its_prompt():
    doc = Challenge.parse("blink:2,turn_left,turn_right").to_dict()
    assert doc["steps"][0] == {"action": "blink", "count": 2, "prompt": "Blink twice"}
    assert "your left" in doc["steps"][1]["prompt"] and "your right" in doc["steps"][2]["prompt"]
    assert doc["step_timeout_s"] == 5.0 and doc["challenge"] == "blink:2,turn_left,turn_right"


def test_the_users_left_is_a_positive_yaw():
    assert YAW_SIGN == {"turn_left": 1, "turn_right": -1}


@pytest.mark.parametrize("text", ["", "blink,,turn_left", "nod", "blink:0", "blink:4", "turn_left:2", "blink:two",
                                  ",".join(["blink", "turn_left"] * 11)])  # 22 steps: at most 20
def test_bad_challenges_are_invalid_arguments(text):
    with pytest.raises(InvalidArgumentError):
        Challenge.parse(text)


@pytest.mark.parametrize("kwargs", [{"steps": ()}, {"steps": ("blink",), "step_timeout_s": 0},
                                    {"steps": ("blink",), "counts": (1, 1)}, {"steps": ("wave",)}])
def test_bad_challenge_objects_are_refused(kwargs):
    with pytest.raises(InvalidArgumentError):
        Challenge(**kwargs)


def test_random_challenges_never_repeat_a_step_and_mix_blinks_and_turns():
    rng = random.Random(7)
    seen = Counter()
    for _ in range(500):
        c = random_challenge(4, rng)
        assert len(c.steps) == 4
        assert all(a != b for a, b in zip(c.steps, c.steps[1:]))
        assert "blink" in c.steps and any(s != "blink" for s in c.steps)
        assert all(1 <= c.count(i) <= 2 for i in range(4))
        seen[c.describe()] += 1
    assert len(seen) > 50  # many different orders and counts
    assert set(ACTIONS) == {"blink", "turn_left", "turn_right"}


def test_random_challenges_default_to_the_system_csprng(monkeypatch):
    import secrets

    made = []
    real = secrets.SystemRandom

    class Spy(real):
        def __init__(self, *a):
            made.append(self)
            super().__init__(*a)

    monkeypatch.setattr(secrets, "SystemRandom", Spy)
    one = random_challenge()
    assert made and len(one.steps) == 3


def test_a_seeded_rng_repeats_and_bad_sizes_are_refused():
    assert random_challenge(3, random.Random(1)) == random_challenge(3, random.Random(1))
    assert len(random_challenge(1, random.Random(1)).steps) == 1
    for bad in (0, 21):
        with pytest.raises(InvalidArgumentError):
            random_challenge(bad)
