"""Agent metrics from conversation events, on a controlled clock, against hand-computed expectations.

Each scenario is a timeline of events (seconds from T0) and the facts a supervisor should see. The replay
(`agents.metrics.derive`) is pure, so these need no database; tests/test_reports.py checks the stored path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agents.business_hours import BusinessHours, Schedule, changed, from_settings
from agents.metrics import EventRow, Fact, derive

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 09:00 in Hồ Chí Minh City
A, B, C = 11, 12, 13


class Timeline:
    def __init__(self) -> None:
        self.rows: list[EventRow] = []

    def add(self, seconds: float, kind: str, actor_type: str = "system", actor_id: int | None = None, **data: Any):
        self.rows.append(
            EventRow(len(self.rows) + 1, kind, actor_type, actor_id, T0 + timedelta(seconds=seconds), data)
        )
        return self

    def customer(self, s: float) -> Timeline:
        return self.add(s, "message_in", "contact", 1)

    def agent(self, s: float, who: int | None, **data: Any) -> Timeline:
        return self.add(s, "message_out", "agent", who, origin="platform" if who is None else "hopthu", **data)

    def bot(self, s: float) -> Timeline:
        return self.add(s, "message_out", "bot", None, origin="hopthu")

    def assign(self, s: float, who: int | None, reason: str = "manual", previous: int | None = None) -> Timeline:
        return self.add(
            s,
            "assigned",
            "system",
            None,
            agent_id=who,
            team_id=None,
            reason=reason,
            previous={"agent_id": previous, "team_id": None},
        )

    def status(self, s: float, status: str, previous: str, who: int | None = A) -> Timeline:
        return self.add(s, "status_changed", "agent", who, status=status, previous=previous)

    def facts(self, hours: BusinessHours | None = None) -> list[Fact]:
        return derive(self.rows, hours).facts


def by_kind(facts: list[Fact], kind: str) -> list[tuple[int | None, float, float | None]]:
    return [(f.agent_id, f.value, f.held) for f in facts if f.kind == kind]


def test_first_response_reply_and_resolution_for_the_holder() -> None:
    t = Timeline().add(0, "opened", "contact", 1).customer(0).assign(10, A).agent(70, A)
    t.customer(100).customer(130).agent(190, A)  # two customer messages, one reply: one wait from the first
    t.status(300, "resolved", "open")
    facts = t.facts()
    assert by_kind(facts, "first_response") == [(A, 70.0, 60.0)]  # the customer waited 70 s, A held it 60 s
    assert by_kind(facts, "reply") == [(A, 90.0, 90.0)]
    assert by_kind(facts, "resolution") == [(A, 300.0, 300.0)]
    assert by_kind(facts, "message") == [(A, 1.0, None), (A, 1.0, None)]


def test_several_customer_messages_before_one_reply_are_one_wait() -> None:
    t = Timeline().add(0, "opened").customer(0).customer(20).customer(45).agent(60, B)
    facts = t.facts()
    assert by_kind(facts, "first_response") == [(B, 60.0, 60.0)]  # unassigned: it belongs to whoever answered
    assert by_kind(facts, "reply") == []


def test_bot_time_is_excluded_and_the_wait_starts_at_the_hand_off() -> None:
    t = Timeline().add(0, "opened").customer(0).bot(2)  # the bot answered: no wait for a person
    t.customer(60).bot(62)
    t.customer(120).add(121, "handoff", "bot", None, reason="human_handoff")
    t.bot(121.5)  # "em chuyển nhân viên…" after the hand-off does not answer the customer
    t.assign(130, A, "round_robin").agent(181, A)
    t.status(400, "resolved", "open")
    facts = t.facts()
    assert by_kind(facts, "first_response") == [(A, 60.0, 51.0)]  # 181 − 121 (hand-off), A held it from 130
    assert by_kind(facts, "reply") == []
    assert by_kind(facts, "resolution") == [(A, 279.0, 279.0)]  # from the hand-off, not from the bot's start


def test_conversation_the_bot_resolved_alone_is_no_agent_resolution() -> None:
    t = Timeline().add(0, "opened").customer(0).bot(1).status(60, "resolved", "open", who=None)
    facts = t.facts()
    assert by_kind(facts, "resolution") == []
    assert by_kind(facts, "bot_resolution") == [(None, 1.0, None)]
    assert by_kind(facts, "first_response") == []


def test_reassignment_mid_wait_splits_the_interval() -> None:
    t = Timeline().add(0, "opened").customer(0).assign(0, A, "round_robin")
    t.assign(300, None, "reply_timeout", previous=A).assign(300, B, "round_robin")
    t.agent(360, B)
    facts = t.facts()
    assert by_kind(facts, "first_response") == [(B, 360.0, 60.0)]  # B's clock starts when B got it
    assert by_kind(facts, "reassigned") == [(A, 1.0, None)]  # A lost it without answering


def test_direct_reassignment_between_agents_counts_once() -> None:
    t = Timeline().add(0, "opened").customer(0).assign(5, A).assign(50, B, previous=A).agent(80, B)
    t.assign(90, None, "manual", previous=B)  # B gives it up by hand: not a reassignment
    facts = t.facts()
    assert by_kind(facts, "reassigned") == [(A, 1.0, None)]
    assert by_kind(facts, "first_response") == [(B, 80.0, 30.0)]


def test_reopen_starts_a_new_cycle_with_its_own_first_response() -> None:
    t = Timeline().add(0, "opened").customer(0).assign(0, A).agent(30, A).status(100, "resolved", "open")
    t.add(1000, "reopened", "contact", 1, previous="resolved").customer(1000).agent(1050, A)
    t.customer(1100).agent(1160, A).status(1200, "resolved", "open")
    facts = t.facts()
    assert by_kind(facts, "first_response") == [(A, 30.0, 30.0), (A, 50.0, 50.0)]
    assert by_kind(facts, "reply") == [(A, 60.0, 60.0)]
    assert by_kind(facts, "resolution") == [(A, 100.0, 100.0), (A, 200.0, 200.0)]  # not 1200: resolved time excluded


def test_reopen_after_snooze_continues_the_cycle() -> None:
    t = Timeline().add(0, "opened").customer(0).agent(10, A).status(20, "snoozed", "open")
    t.add(500, "reopened", "contact", 1, previous="snoozed").customer(500).agent(530, A)
    t.status(600, "resolved", "snoozed")
    facts = t.facts()
    assert by_kind(facts, "first_response") == [(A, 10.0, 10.0)]
    assert by_kind(facts, "reply") == [(A, 30.0, 30.0)]
    assert by_kind(facts, "resolution") == [(A, 600.0, 600.0)]  # unassigned: the agent who resolved it


def test_agent_reopening_a_resolved_conversation_starts_a_cycle_without_a_wait() -> None:
    t = Timeline().add(0, "opened").customer(0).agent(10, A).status(20, "resolved", "open")
    t.status(100, "open", "resolved").agent(110, A).customer(200).agent(260, A)
    facts = t.facts()
    assert by_kind(facts, "first_response") == [(A, 10.0, 10.0)]
    assert by_kind(facts, "reply") == [(A, 60.0, 60.0)]  # the agent wrote first in cycle 2: a reply, not a first


def test_private_notes_are_not_replies() -> None:
    t = Timeline().add(0, "opened").customer(0).assign(0, A)
    t.add(10, "note", "agent", A, origin="hopthu").add(25, "note", "agent", B, origin="hopthu")
    t.agent(40, A)
    facts = t.facts()
    assert by_kind(facts, "first_response") == [(A, 40.0, 40.0)]
    assert [f.agent_id for f in facts if f.kind == "message"] == [A]  # notes are not messages sent


def test_echoes_end_the_wait_but_belong_to_no_agent() -> None:
    t = Timeline().add(0, "opened").customer(0).assign(5, A).agent(20, None)  # the page answered from Facebook
    t.customer(100).agent(130, A)
    facts = t.facts()
    assert by_kind(facts, "first_response") == [(None, 20.0, None)]
    assert by_kind(facts, "reply") == [(A, 30.0, 30.0)]
    assert [f.agent_id for f in facts if f.kind == "message"] == [None, A]


def test_an_agent_writing_while_the_bot_holds_takes_over_without_a_sample() -> None:
    t = Timeline().add(0, "opened").customer(0).bot(1).customer(30).agent(40, A).customer(100).bot(101)
    t.agent(150, A)
    facts = t.facts()
    assert by_kind(facts, "first_response") == []
    # After the take-over the bot stays out: its message does not answer the customer, A's does.
    assert by_kind(facts, "reply") == [(A, 50.0, 50.0)]


def test_messages_outside_business_hours_count_only_open_hours() -> None:
    hours = from_settings(
        {
            "business_hours": {
                "days": {d: [["08:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                "holidays": ["2026-03-09"],
            }
        }
    )
    friday_1650 = datetime(2026, 3, 6, 9, 50, tzinfo=UTC)  # 16:50 in Hồ Chí Minh City
    tuesday_0820 = datetime(2026, 3, 10, 1, 20, tzinfo=UTC)  # Monday the 9th is a holiday
    rows = [
        EventRow(1, "opened", "contact", 1, friday_1650, {}),
        EventRow(2, "message_in", "contact", 1, friday_1650, {}),
        EventRow(3, "message_out", "agent", A, tuesday_0820, {"origin": "hopthu"}),
    ]
    (fact,) = [f for f in derive(rows, hours).facts if f.kind == "first_response"]
    assert fact.value == (tuesday_0820 - friday_1650).total_seconds()
    assert fact.value_bh == 10 * 60 + 20 * 60  # 16:50–17:00 Friday, 08:00–08:20 Tuesday
    assert fact.held_bh == fact.value_bh


def test_sla_breach_and_csat_belong_to_the_holder() -> None:
    t = (
        Timeline()
        .add(0, "opened")
        .customer(0)
        .assign(1, A)
        .add(301, "sla_breached", "system", None, target="first_response")
    )
    t.agent(400, A).status(500, "resolved", "open").add(600, "csat_answered", "contact", 1, rating=4, agent_id=A)
    t.add(700, "csat_answered", "contact", 1, rating=9, agent_id=A)  # not a rating: ignored
    facts = t.facts()
    assert by_kind(facts, "sla_breach") == [(A, 1.0, None)]
    assert by_kind(facts, "csat") == [(A, 4.0, None)]


def test_events_are_replayed_in_time_order_whatever_their_ids() -> None:
    rows = [
        EventRow(5, "message_out", "agent", A, T0 + timedelta(seconds=30), {}),
        EventRow(2, "message_in", "contact", 1, T0, {}),
        EventRow(1, "opened", "contact", 1, T0, {}),
    ]
    assert by_kind(derive(rows).facts, "first_response") == [(A, 30.0, 30.0)]


def test_business_hours_helpers() -> None:
    hours = from_settings({"business_hours": {"days": {"mon": [["08:00", "12:00"], ["13:00", "24:00"]]}}})
    monday_0700 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    assert not hours.is_open(monday_0700)
    assert hours.next_open(monday_0700) == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert hours.is_open(datetime(2026, 3, 2, 16, 30, tzinfo=UTC))  # 23:30 local
    assert hours.seconds_between(monday_0700, monday_0700 + timedelta(days=1)) == (4 + 11) * 3600
    assert hours.local_day(datetime(2026, 3, 1, 18, 0, tzinfo=UTC)) == "2026-03-02"
    assert BusinessHours().seconds_between(monday_0700, monday_0700 + timedelta(hours=2)) == 7200


def test_hours_that_changed_count_each_moment_with_the_hours_in_force_then() -> None:
    monday_0700 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # 07:00 in Hồ Chí Minh City
    change = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)  # Tuesday 07:00: from then on, 09:00–17:00 every weekday
    nine_to_five = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    settings: dict[str, Any] = {"business_hours": {"days": {"mon": [["08:00", "12:00"]], "tue": [["08:00", "12:00"]]}}}
    settings = changed(settings, {"days": nine_to_five}, change)
    hours = from_settings(settings)
    assert isinstance(hours, Schedule)
    # Monday under the old hours (08:00–12:00), Tuesday under the new ones (09:00–17:00).
    assert hours.seconds_between(monday_0700, monday_0700 + timedelta(days=1)) == 4 * 3600
    assert hours.seconds_between(change, change + timedelta(days=1)) == 8 * 3600
    assert hours.seconds_between(monday_0700, change + timedelta(days=1)) == 12 * 3600
    assert hours.is_open(monday_0700 + timedelta(hours=1, minutes=30))  # Monday 08:30: open then
    assert not hours.is_open(change + timedelta(hours=1, minutes=30))  # Tuesday 08:30: no longer
    monday_1300 = monday_0700 + timedelta(hours=6)
    assert hours.next_open(monday_1300) == change + timedelta(hours=2)  # Tuesday 09:00, the new hours' opening
    # A holiday is a dated fact: added later, it still closes its day under the old hours.
    settings = changed(settings, {"days": nine_to_five, "holidays": ["2026-03-02"]}, change + timedelta(days=30))
    assert len(settings["business_hours_history"]) == 1  # holidays alone are no new version
    assert from_settings(settings).seconds_between(monday_0700, change) == 0.0
    # Back to always open: the earlier versions still count their own periods.
    settings = changed(settings, None, change + timedelta(days=40))
    assert "business_hours" not in settings and len(settings["business_hours_history"]) == 2
    reopened = from_settings(settings)
    assert reopened.seconds_between(change, change + timedelta(days=1)) == 8 * 3600
    later = change + timedelta(days=41)
    assert reopened.seconds_between(later, later + timedelta(hours=2)) == 7200


def test_a_csat_answer_that_reopened_the_conversation_is_no_new_cycle() -> None:
    t = Timeline().add(0, "opened").customer(0).assign(0, A).agent(20, A).status(100, "resolved", "open")
    t.add(101, "message_out", "system", None, origin="hopthu")  # the survey: neither bot nor human
    t.add(160, "reopened", "contact", 1, previous="resolved").customer(160)
    t.add(160, "csat_answered", "contact", 1, rating=5, agent_id=A)
    t.add(161, "status_changed", "system", None, status="resolved", previous="open", reason="csat_answer")
    facts = t.facts()
    assert by_kind(facts, "first_response") == [(A, 20.0, 20.0)]
    assert by_kind(facts, "resolution") == [(A, 100.0, 100.0)]
    assert by_kind(facts, "csat") == [(A, 5.0, None)]
    assert [f.agent_id for f in facts if f.kind == "message"] == [A]


def test_a_formal_hand_off_after_a_person_took_over_keeps_the_wait() -> None:
    t = Timeline().add(0, "opened").customer(0).bot(1).agent(10, A).customer(50)
    t.add(52, "handoff", "bot", None, reason="agent_replied").agent(80, A)
    assert by_kind(t.facts(), "reply") == [(A, 30.0, 30.0)]
