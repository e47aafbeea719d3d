"""The wire shapes of limits: what /api/stats/blocks takes and answers (camelCase out,
snake_case in Python, as everywhere)."""

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
