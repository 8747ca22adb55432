"""The event schema: every key of the issue always present, null where it does not apply."""

from __future__ import annotations

import io
import json

import pytest

from faceprint.types import Box
from faceprint.video.events import EVENT_KEYS, EVENT_KINDS, Event, write_jsonl


def test_every_kind_has_every_key_in_order():
    for kind in EVENT_KINDS:
        d = Event(kind, 3, 0.1, extra={"x": 1}).to_dict()
        assert tuple(d)[:len(EVENT_KEYS)] == EVENT_KEYS
        assert d["track"] is None and d["identity"] is None and d["similarity"] is None and d["box"] is None
        assert d["x"] == 1


def test_values_are_rounded_and_boxes_are_whole_pixels():
    d = Event("identified", 84, 2.80280280, 3, "Ada", 0.4648791, Box(138.4, 51.6, 215.2, 159.5)).to_dict()
    assert d == {"event": "identified", "frame": 84, "time_s": 2.803, "track": 3, "identity": "Ada",
                 "similarity": 0.4649, "box": [138, 52, 215, 160]}


def test_extra_cannot_replace_the_common_keys_and_kinds_are_checked():
    with pytest.raises(ValueError):
        Event("track_ended", 1, 0.0, extra={"track": 2})
    with pytest.raises(ValueError):
        Event("no_such_event", 1, 0.0)  # type: ignore[arg-type]


def test_json_lines_one_object_a_line():
    buffer = io.StringIO()
    events = [Event("scene_cut", 211, 7.04), Event("track_ended", 210, 7.007, 3, None, None, Box(0, 0, 1, 1),
                                                   extra={"reason": "cut", "name": "Zoë"})]
    write_jsonl(events, buffer)
    lines = buffer.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [e.to_dict() for e in events]
    assert "Zoë" in lines[1]  # names as they are, not \\u escapes
