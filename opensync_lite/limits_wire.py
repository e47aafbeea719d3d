"""The wire shapes of limits: what /api/stats/blocks takes and answers (camelCase out,
snake_case in Python, as everywhere)."""

import re

from marshmallow import Schema, fields, validate

from .schemas import FiltersQuery


class BlocksQuery(FiltersQuery):
    """The session filters, the block length and how far back to look."""

    hours = fields.Integer(load_default=5, validate=validate.Range(1, 168), metadata={
        "description": "a block's length in hours (Claude's 5-hour window by default)"})
    days = fields.Integer(load_default=7, validate=validate.Range(1, 92), metadata={
        "description": "the blocks of the last so many days (when `from` is not given)"})


class _Tokens(Schema):
    input_tokens = fields.Integer(data_key="inputTokens")
    output_tokens = fields.Integer(data_key="outputTokens")
    cache_write_tokens = fields.Integer(data_key="cacheWriteTokens")
    cache_read_tokens = fields.Integer(data_key="cacheReadTokens")
    total_tokens = fields.Integer(data_key="totalTokens")
    cost = fields.Float()
    cost_status = fields.String(data_key="costBasis", allow_none=True, metadata={
        "description": "null: every cost was recorded by the agent; `estimated`: some were priced here "
                       "from tokens; `unpriced`: some model had no known price (its cost is missing)"})


class BurnRateOut(Schema):
    tokens_per_minute = fields.Float(data_key="tokensPerMinute")
    tokens_per_minute_for_indicator = fields.Float(data_key="tokensPerMinuteForIndicator", metadata={
        "description": "input and output tokens only (cache tokens left out), as ccusage's indicator"})
    tokens_per_hour = fields.Float(data_key="tokensPerHour")
    cost_per_minute = fields.Float(data_key="costPerMinute")
    cost_per_hour = fields.Float(data_key="costPerHour")


class ProjectionOut(Schema):
    total_tokens = fields.Integer(data_key="totalTokens")
    total_cost = fields.Float(data_key="totalCost")
    remaining_minutes = fields.Integer(data_key="remainingMinutes")


class SourceTotalsOut(_Tokens):
    source = fields.String(allow_none=True)


class BlockOut(_Tokens):
    id = fields.String()
    start = fields.Integer(metadata={"description": "epoch ms: the hour of the first activity"})
    end = fields.Integer(metadata={"description": "epoch ms: when the window resets"})
    actual_end = fields.Integer(data_key="actualEnd", allow_none=True, metadata={"description": "the last activity"})
    is_active = fields.Boolean(data_key="isActive")
    is_gap = fields.Boolean(data_key="isGap")
    entries = fields.Integer()
    models = fields.List(fields.String())
    sources = fields.List(fields.Nested(SourceTotalsOut))
    burn_rate = fields.Nested(BurnRateOut, data_key="burnRate", allow_none=True)
    projection = fields.Nested(ProjectionOut, allow_none=True)


class WindowsOut(Schema):
    hours = fields.Integer()
    since = fields.Integer()
    until = fields.Integer()
    now = fields.Integer()
    blocks = fields.List(fields.Nested(BlockOut))
    active = fields.Nested(BlockOut, allow_none=True)
    weeks = fields.List(fields.Nested(BlockOut))
    active_week = fields.Nested(BlockOut, data_key="activeWeek", allow_none=True)


blocks_query = BlocksQuery()
windows_out = WindowsOut()


# --- the status line's snapshot -------------------------------------------------------------------

from marshmallow import EXCLUDE, RAISE, ValidationError, post_load, pre_load, validates_schema  # noqa: E402

from .schemas import Amount, Text  # noqa: E402

MAX_PERCENT = 10_000.0  # past 100 when a plan is over its limit; far past any real figure


class Percent(fields.Float):
    def __init__(self, **kwargs):
        super().__init__(allow_nan=False, allow_none=True, metadata={"minimum": 0, "maximum": MAX_PERCENT}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) not in (int, float) or not 0 <= value <= MAX_PERCENT:
            raise ValidationError(f"Must be a number from 0 to {MAX_PERCENT:.0f}.")
        return float(value)


class ResetsAt(fields.Integer):
    """Claude Code's ``resets_at``: epoch seconds (milliseconds are taken too) → epoch ms."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, allow_none=True, metadata={"minimum": 0, "maximum": 253402300799999}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) not in (int, float) or not 0 <= value < 253402300800000:
            raise ValidationError("Must be epoch seconds.")
        return int(value if value > 100_000_000_000 else value * 1000)


class WindowIn(Schema):
    class Meta:
        unknown = EXCLUDE

    used_percentage = Percent()
    resets_at = ResetsAt()


class RateLimitsIn(Schema):
    class Meta:
        unknown = EXCLUDE

    five_hour = fields.Nested(WindowIn, allow_none=True)
    seven_day = fields.Nested(WindowIn, allow_none=True)


class CostIn(Schema):
    class Meta:
        unknown = EXCLUDE

    total_cost_usd = Amount()


class SnapshotIn(Schema):
    """POST /api/limits/snapshots: what Claude Code gave its status line (its own snake_case
    keys, as documented for statusLine commands), and the machine it ran on. Keys not read here
    (workspace, context_window, ...) are kept in ``extra``."""

    class Meta:
        unknown = EXCLUDE  # gathered into extra by _keep

    machine = Text(256, load_default="", allow_none=False)
    session_id = Text(256, 1)
    model = fields.Raw(allow_none=True, metadata={"description": "{id, display_name} or a name"})
    cost = fields.Nested(CostIn, allow_none=True)
    rate_limits = fields.Nested(RateLimitsIn, allow_none=True)
    extra = fields.Raw(allow_none=True)  # made by _keep: every other key, as sent

    @pre_load
    def _keep(self, data, **kwargs):
        if not isinstance(data, dict):
            return data  # marshmallow answers "Invalid input type."
        known = {k: v for k, v in data.items() if k in self.fields and k != "extra"}
        rest = {k: v for k, v in data.items() if k not in known}
        return {**known, "extra": rest or None}

    @post_load
    def _flatten(self, data, **kwargs):
        model, extra = data.get("model"), data.get("extra")
        if isinstance(model, dict):
            model = model.get("id") or model.get("display_name")
        if model is not None and (not isinstance(model, str) or not 0 < len(model) <= 256):
            extra = {**(extra or {}), "model": data["model"]}  # a shape we do not read: kept as sent
            model = None
        limits = data.get("rate_limits") or {}
        five, seven = limits.get("five_hour") or {}, limits.get("seven_day") or {}
        return {"machine": data["machine"], "session_external_id": data.get("session_id"), "model": model,
                "session_cost": (data.get("cost") or {}).get("total_cost_usd"),
                "five_hour_used": five.get("used_percentage"), "five_hour_resets_at": five.get("resets_at"),
                "seven_day_used": seven.get("used_percentage"), "seven_day_resets_at": seven.get("resets_at"),
                "extra": extra}


class SnapshotsQuery(Schema):
    class Meta:
        unknown = RAISE

    days = fields.Integer(load_default=7, validate=validate.Range(1, 92))


class SpendOut(Schema):
    total_tokens = fields.Integer(data_key="totalTokens")
    cost = fields.Float()
    cost_status = fields.String(data_key="costBasis", allow_none=True)


class SnapshotOut(Schema):
    machine = fields.String()
    model = fields.String(allow_none=True)
    session_cost = fields.Float(data_key="sessionCost", allow_none=True)
    five_hour_used = fields.Float(data_key="fiveHourUsed", allow_none=True)
    five_hour_resets_at = fields.Integer(data_key="fiveHourResetsAt", allow_none=True)
    seven_day_used = fields.Float(data_key="sevenDayUsed", allow_none=True)
    seven_day_resets_at = fields.Integer(data_key="sevenDayResetsAt", allow_none=True)
    created_at = fields.Integer(data_key="createdAt")


class SnapshotStored(Schema):
    stored = fields.Boolean()
    today = fields.Nested(SpendOut, metadata={"description": "every agent's spend since 00:00 UTC"})
    alerts = fields.List(fields.Dict(), metadata={"description": "budget warnings for the status line"})


class SnapshotList(Schema):
    snapshots = fields.List(fields.Nested(SnapshotOut))


snapshot_in = SnapshotIn()
snapshots_query = SnapshotsQuery()
snapshot_stored = SnapshotStored()
snapshot_list = SnapshotList()


# --- budgets --------------------------------------------------------------------------------------

from .schemas import Source  # noqa: E402

PERIODS = ("day", "week", "month")
HTTP_URL = re.compile(r"^https?://[^\s\x00/?#]+([/?#][^\s\x00]*)?$")  # where alerts are POSTed


MIN_BUDGET = 0.01


class BudgetIn(Schema):
    """POST /api/budgets (PATCH takes the same fields, each optional): an amount in USD per UTC
    day, ISO week or month, for all agents, one ``source``, one ``project``, or one source's
    use in one project (both)."""

    class Meta:
        unknown = RAISE

    period = fields.String(required=True, validate=validate.OneOf(PERIODS))
    amount = Amount(required=True)
    amount.allow_none = False
    amount.metadata = {"minimum": MIN_BUDGET, "maximum": 1e9}
    source = Source(allow_none=True)
    project = Text(4096, 1, allow_none=True)

    @post_load
    def _one_scope(self, data, **kwargs):
        # A budget under a cent would make its percentage overflow to infinity (not JSON).
        if "amount" in data and data["amount"] < MIN_BUDGET:
            raise ValidationError(f"Must be at least {MIN_BUDGET} (a cent).", "amount")
        return data


class StrictBool(fields.Boolean):
    """JSON true or false; 0, 1 and "yes" are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not bool:
            raise self.make_error("invalid")
        return value


class ChannelsIn(Schema):
    """PUT /api/budgets/channels: where alerts go besides the dashboard and the status line."""

    class Meta:
        unknown = RAISE

    webhook_url = Text(2048, data_key="webhookUrl", allow_none=True, validate=validate.Regexp(HTTP_URL, error="Not a valid URL."),
                       metadata={"pattern": HTTP_URL.pattern})
    ntfy_url = Text(2048, data_key="ntfyUrl", allow_none=True, validate=validate.Regexp(HTTP_URL, error="Not a valid URL."),
                    metadata={"pattern": HTTP_URL.pattern})
    desktop = StrictBool()

    @validates_schema
    def _reachable(self, data, **kwargs):
        """Only addresses the server may send to (see outbound.py); desktop alerts only where the
        operator allows them."""
        from flask import current_app

        from . import outbound
        errors = {}
        for name, key in (("webhook_url", "webhookUrl"), ("ntfy_url", "ntfyUrl")):
            if data.get(name):
                try:
                    outbound.resolve(data[name], current_app.config.get("OPENSYNC_WEBHOOK_ALLOW_PRIVATE", False))
                except outbound.Refused as err:
                    errors[key] = [f"Not allowed: {err}."]
        if data.get("desktop") and not current_app.config.get("OPENSYNC_DESKTOP_ALERTS"):
            errors["desktop"] = ["This server does not allow desktop alerts (its operator can, with --desktop-alerts)."]
        if errors:
            raise ValidationError(errors)


class BudgetOut(Schema):
    id = fields.String()
    period = fields.String()
    amount = fields.Float()
    source = fields.String(allow_none=True)
    project = fields.String(allow_none=True)
    spent = fields.Float(metadata={"description": "spent in the current period"})
    percent = fields.Float()
    cost_basis = fields.String(data_key="costBasis", allow_none=True)
    period_start = fields.Integer(data_key="periodStart")
    period_end = fields.Integer(data_key="periodEnd")
    created_at = fields.Integer(data_key="createdAt")


class DeliveryOut(Schema):
    channel = fields.String()
    attempts = fields.Integer()
    delivered_at = fields.Integer(data_key="deliveredAt", allow_none=True)
    last_error = fields.String(data_key="lastError", allow_none=True)


class AlertOut(Schema):
    id = fields.String()
    budget = fields.String(data_key="budgetId")
    period = fields.String()
    period_start = fields.Integer(data_key="periodStart")
    threshold = fields.Integer()
    spent = fields.Float()
    amount = fields.Float()
    cost_basis = fields.String(data_key="costBasis", allow_none=True)
    text = fields.String()
    created_at = fields.Integer(data_key="createdAt")
    deliveries = fields.List(fields.Nested(DeliveryOut))


class ChannelsOut(Schema):
    webhook_url = fields.String(data_key="webhookUrl", allow_none=True)
    webhook_secret = fields.String(data_key="webhookSecret", metadata={
        "description": "the HMAC-SHA256 key of X-OpenSync-Signature (sha256=<hex>) on each webhook body"})
    ntfy_url = fields.String(data_key="ntfyUrl", allow_none=True)
    desktop = fields.Boolean()


budget_in = BudgetIn()
budget_patch = BudgetIn(partial=True)
channels_in = ChannelsIn()
budget_out = BudgetOut()
alert_out = AlertOut()
channels_out = ChannelsOut()
