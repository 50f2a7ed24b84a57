"""The metering nameko service: rights checked here, rules in ``readings``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from nameko.dependency_providers import Config
from nameko.timer import timer

from klients_common.grants import Right
from klients_common.nameko_auth import Authorization, rpc
from klients_common.nameko_db import Database
from klients_common.outbox import OutboxRelay
from klients_common.revocations import RevocationAware

from . import readings
from .models import Meter, Reading, outbox
from .settings import OUTBOX_INTERVAL, REMINDER_INTERVAL
from .window import WindowRules, window_state


def _meter_out(meter: Meter) -> dict[str, Any]:
    return {"serial_number": meter.serial_number, "type": meter.meter_type, "digits": meter.digits,
            "unit": meter.unit, "installed_on": meter.installed_on.isoformat(),
            "removed_on": meter.removed_on.isoformat() if meter.removed_on else None}


def _reading_out(reading: Reading, caller: str) -> dict[str, Any]:
    return {"id": reading.id, "value": reading.value, "read_on": reading.read_on.isoformat(),
            "period": reading.period, "source": reading.source, "rollover": reading.rollover,
            "flagged": reading.flagged, "current": reading.superseded_by_id is None,
            "submitted_at": reading.submitted_at.isoformat(), "submitted_role": reading.submitted_role,
            "submitted_by_you": reading.submitted_by == caller}


class MeteringService(RevocationAware):
    """Meters, readings and consumption history."""

    name = "metering"

    auth = Authorization()
    db = Database()
    relay = OutboxRelay(outbox, OUTBOX_INTERVAL)
    config = Config()

    @property
    def rules(self) -> readings.Rules:
        """Return the submission rules from configuration."""
        config = self.config
        return readings.Rules(
            window=WindowRules(open_day=int(config.get("READING_WINDOW_OPEN_DAY", 27)),
                               close_working_days=int(config.get("READING_WINDOW_CLOSE_WORKING_DAYS", 1))),
            implausible_factor=Decimal(str(config.get("IMPLAUSIBLE_FACTOR", 3))),
            default_calorific=Decimal(str(config.get("DEFAULT_CALORIFIC_VALUE", "10.55"))),
        )

    @rpc
    def ping(self) -> str:
        """Answer readiness probes."""
        return "pong"

    @rpc
    def list_meters(self, contract: str) -> list[dict[str, Any]]:
        """Return the meters of a contract the caller may read meters of."""
        self.auth.require(contract, Right.METERS_READ)
        return [_meter_out(m) for m in readings.get_all_meters(db_session=self.db, contract=contract)]

    @rpc
    def list_readings(self, contract: str, meter: str) -> list[dict[str, Any]]:
        """Return every reading of a meter (replaced ones too), newest first."""
        self.auth.require(contract, Right.METERS_READ)
        found = readings.get_meter_or_raise(db_session=self.db, contract=contract, serial=meter)
        caller = self.auth.person_id
        return [_reading_out(r, caller) for r in readings.get_all_readings(db_session=self.db, meter=found)]

    @rpc
    def meters_overview(self, contract: str) -> dict[str, Any]:
        """Return the contract's meters, each with its last current reading, and the reading window as it
        stands now (open until ..., or the next one's dates): the overview's metering half in one call
        (``meters:read``)."""
        self.auth.require(contract, Right.METERS_READ)
        caller = self.auth.person_id
        meters = readings.get_all_meters(db_session=self.db, contract=contract)
        last = readings.last_current_readings(db_session=self.db, meters=meters)
        out = [{**_meter_out(m), "last_reading": _reading_out(last[m.id], caller) if m.id in last else None}
               for m in meters]
        return {"meters": out, "reading_window": window_state(self.rules.window, datetime.now(UTC))}

    @rpc
    def submit_reading(self, contract: str, meter: str, value: Any, confirm_rollover: bool = False,
                       confirm_unusual: bool = False) -> dict[str, Any]:
        """Accept the caller's reading for a meter of the contract (``readings:submit``)."""
        grant = self.auth.require(contract, Right.READINGS_SUBMIT)
        actor = readings.Actor(person_id=self.auth.person_id, role=grant.role.value)
        try:
            reading = readings.submit_reading(
                db_session=self.db, contract=contract, serial=meter, raw_value=value, actor=actor, rules=self.rules,
                now=datetime.now(UTC), confirm_rollover=confirm_rollover is True,
                confirm_unusual=confirm_unusual is True)
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise
        finally:
            self.relay.soon()  # publishes the event while this worker answers
        return _reading_out(reading, actor.person_id or "")

    @rpc
    def consumption(self, contract: str, period_from: str, period_to: str, group_by: str = "month") -> dict[str, Any]:
        """Return the contract's consumption per interval (``consumption:read``)."""
        self.auth.require(contract, Right.CONSUMPTION_READ)
        start, end, group = readings.parse_history_query(period_from, period_to, group_by)
        items = readings.consumption_history(db_session=self.db, contract=contract, period_from=start,
                                             period_to=end, group_by=group,
                                             default_calorific=self.rules.default_calorific)
        return {"contract": contract, "period_from": start.isoformat(), "period_to": end.isoformat(),
                "group_by": group, "unit": "m3", "items": items}

    @timer(interval=REMINDER_INTERVAL)
    def remind_when_window_opens(self) -> None:
        """Once per window (whatever the number of instances), announce it to contracts without a reading."""
        now = datetime.now(UTC)
        window = self.rules.window.window_at(now)
        if window is None:
            return
        if readings.open_window_reminders(db_session=self.db, window=window, now=now) is not None:
            self.db.commit()
            self.relay.soon()
