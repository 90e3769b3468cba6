"""Feedback combination: the weighted mean, the ticks feedback is filed under, late feedback."""

from __future__ import annotations

import pytest

from cogment.api import common_pb2
from cogment.orchestrator.rewards import FeedbackBook, by_target, combine


def fb(actor: int, value: float, confidence: float, tick: int = -1) -> common_pb2.Feedback:
    return common_pb2.Feedback(actor_id=actor, value=value, confidence=confidence, tick_id=tick)


def test_combine_is_the_confidence_weighted_mean() -> None:
    reward = combine([fb(0, 1.0, 1.0), fb(0, 4.0, 2.0), fb(0, 100.0, 0.0), fb(0, 50.0, -1.0)])
    assert reward.value == pytest.approx((1.0 * 1 + 4.0 * 2) / 3)
    assert reward.confidence == pytest.approx(3.0)
    assert [f.value for f in reward.feedbacks] == [1.0, 4.0, 100.0, 50.0]


def test_combine_without_positive_confidence_is_zero() -> None:
    reward = combine([fb(0, 7.0, 0.0)])
    assert (reward.value, reward.confidence, len(reward.feedbacks)) == (0.0, 0.0, 1)


def test_by_target_groups_per_actor() -> None:
    rewards = by_target([fb(1, 2.0, 1.0), fb(0, 3.0, 1.0), fb(1, 4.0, 3.0)])
    assert sorted(rewards) == [0, 1]
    assert rewards[1].value == pytest.approx(3.5)
    assert rewards[0].value == pytest.approx(3.0)


def test_book_files_minus_one_under_the_default_tick_and_fills_agent_id() -> None:
    book = FeedbackBook([0, 1, 0], keep_late=True)
    book.add([fb(1, 1.0, 1.0), fb(2, 5.0, 1.0, tick=1)], default_tick=0)
    rewards = book.close_tick()
    assert list(rewards) == [1]
    assert rewards[1].feedbacks[0].tick_id == 0
    assert rewards[1].feedbacks[0].agent_id == 1  # index within its class
    assert book.close_tick()[2].value == pytest.approx(5.0)  # held until tick 1
    assert book.close_tick() == {}


def test_book_late_feedback_is_for_the_datalog_only() -> None:
    kept = FeedbackBook([0, 0], keep_late=True)
    dropped = FeedbackBook([0, 0], keep_late=False)
    for book in (kept, dropped):
        book.close_tick()  # tick 0 rewarded
        book.add([fb(0, 1.0, 1.0, tick=0)], default_tick=1)
        assert book.close_tick() == {}
    assert [f.tick_id for f in kept.take_late()] == [0]
    assert kept.take_late() == []
    assert dropped.take_late() == []


def test_book_drops_unknown_targets() -> None:
    book = FeedbackBook([0], keep_late=False)
    assert book.add([fb(3, 1.0, 1.0), fb(0, 1.0, 1.0)], default_tick=0) == 1
    assert list(book.close_tick()) == [0]
