"""The administrator's status page and its JSON twin for monitoring (admin session required)."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, jsonify, render_template
from flask.typing import ResponseReturnValue

from pro_app.i18n import _l
from pro_app.models.types import utcnow
from pro_app.services.metrics import Metrics, collect_metrics
from pro_app.staff import bp
from pro_app.staff.admin import admin_only
from pro_app.staff.worklist import CHANNEL_LABELS, message_kind, timepoint_label

# What each count of a dispatcher pass means (services/dispatch.py DispatchSummary).
PASS_LABELS = {
    "opened": _l("questionnaires opened"),
    "missed": _l("questionnaires closed unanswered"),
    "claimed": _l("messages taken up"),
    "sent": _l("messages sent"),
    "deferred": _l("messages postponed (quiet hours)"),
    "cancelled": _l("messages cancelled"),
    "retrying": _l("messages to be retried"),
    "failed": _l("messages failed for good"),
}


def _metrics() -> Metrics:
    config = current_app.config
    return collect_metrics(
        utcnow(),
        timezone=str(config["TIMEZONE"]),
        interval_seconds=float(config["SCHEDULER_INTERVAL_SECONDS"]),
        claim_seconds=float(config["OUTBOX_CLAIM_SECONDS"]),
    )


@bp.get("/admin/metrics")
@admin_only
def admin_metrics() -> ResponseReturnValue:
    """Outbox, scheduler, completion per time point, locked accounts and the schema."""
    metrics = _metrics()
    oldest_age = metrics.outbox.oldest_due_age_seconds
    return render_template(
        "staff/admin_metrics.html",
        metrics=metrics,
        oldest_age=None if oldest_age is None else timedelta(seconds=oldest_age),
        late_after=timedelta(seconds=metrics.scheduler.late_after_seconds),
        channel_label=lambda code: str(CHANNEL_LABELS.get(code, code)),
        kind_label=message_kind,
        timepoint_label=timepoint_label,
        pass_counts=_pass_counts(metrics),
    )


def _pass_counts(metrics: Metrics) -> list[tuple[str, int]]:
    """The last pass's counts with their labels, in the summary's order."""
    last_pass = metrics.scheduler.last_pass
    if last_pass is None:
        return []
    return [
        (str(PASS_LABELS.get(name, name)), count)
        for name, count in dataclasses.asdict(last_pass).items()
    ]


@bp.get("/admin/metrics.json")
@admin_only
def admin_metrics_json() -> ResponseReturnValue:
    """The same figures as JSON (datetimes in ISO 8601, UTC)."""
    metrics = _metrics()
    figures = _plain(dataclasses.asdict(metrics))
    figures["database"]["is_up_to_date"] = metrics.database.is_up_to_date
    return jsonify(figures)


def _plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO 8601, enums as their codes."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value
