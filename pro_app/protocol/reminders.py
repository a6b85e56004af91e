"""The messages planned for one assessment window, and the quiet-hours rule, as pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pro_app.protocol.model import ReminderPlan, Schedule
from pro_app.protocol.windows import AssessmentWindow, local_instant, require_aware

INVITATION = "invitation"
LAST_CALL = "last_call"


def reminder_kind(number: int) -> str:
    """Kind of the n-th reminder (1-based, in the order of `after_days`)."""
    return f"reminder_{number}"


@dataclass(frozen=True)
class PlannedMessage:
    """One message to send for a time point; the caller picks the channels."""

    timepoint: str
    kind: str
    send_at: datetime


def is_quiet(instant: datetime, plan: ReminderPlan, tz: ZoneInfo) -> bool:
    """Whether an instant falls in the quiet hours of the patient's local time."""
    require_aware(instant)
    return plan.is_quiet_time(instant.astimezone(tz).time())


def next_allowed_instant(instant: datetime, plan: ReminderPlan, tz: ZoneInfo) -> datetime:
    """The instant itself if sending is allowed then, else the end of these quiet hours (UTC)."""
    if not is_quiet(instant, plan, tz):
        return instant.astimezone(UTC)
    local = instant.astimezone(tz)
    ends_on = local.date()
    if local.time() >= plan.quiet_end:
        # Quiet hours that began this evening end tomorrow morning.
        ends_on += timedelta(days=1)
    return local_instant(ends_on, plan.quiet_end, tz)


def plan_messages(
    schedule: Schedule,
    window: AssessmentWindow,
    tz: ZoneInfo,
    not_before: datetime | None = None,
) -> list[PlannedMessage]:
    """Invitation, reminders and last call for a window, in time order (UTC instants)."""
    plan = schedule.reminders
    if not_before is not None:
        require_aware(not_before)
    if not_before is not None and not_before >= window.opens_at(tz):
        # The window is already open (enrolment on its opening day, late enrolment, re-planning):
        # invite now, or as soon as quiet hours end, rather than at a time that has passed.
        invitation_at = next_allowed_instant(not_before, plan, tz)
    else:
        invitation_at = _send_at(window.opens_on, plan, tz)
    invited_on = invitation_at.astimezone(tz).date()
    last_call_on = window.closes_on - timedelta(days=plan.last_call_days_before_close)

    # At most one message a day: a reminder never repeats the invitation's day or pre-empts the
    # last call. Numbers stay tied to `after_days`, so a dropped reminder leaves a gap.
    later_days = [
        (reminder_kind(number), window.opens_on + timedelta(days=days))
        for number, days in enumerate(plan.after_days, start=1)
    ]
    later_days = [(kind, day) for kind, day in later_days if invited_on < day < last_call_on]
    if invited_on < last_call_on:
        later_days.append((LAST_CALL, last_call_on))
    messages = [PlannedMessage(window.timepoint, INVITATION, invitation_at)] + [
        PlannedMessage(window.timepoint, kind, _send_at(day, plan, tz)) for kind, day in later_days
    ]

    closes_at = window.closes_at(tz)
    return sorted(
        (message for message in messages if message.send_at < closes_at),
        key=lambda message: message.send_at,
    )


def _send_at(day: date, plan: ReminderPlan, tz: ZoneInfo) -> datetime:
    # The file guarantees send_time is outside quiet hours; a daylight-saving gap can still shift
    # it, so the rule is applied once more rather than trusted.
    return next_allowed_instant(local_instant(day, plan.send_time, tz), plan, tz)
