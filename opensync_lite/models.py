"""Peewee models mirroring schema.sql (which is the source of truth for the DDL)."""

import json

from peewee import (
    Field,
    BooleanField,
    CompositeKey,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from .db import database


class JSONText(TextField):
    """A JSON value kept as compact ASCII text, so any SQL dialect can hold it: NULs and lone
    surrogates inside strings are escapes there, stored and given back as sent."""

    def db_value(self, value):
        if value is None:
            return None
        return json.dumps(value, separators=(",", ":"))

    def python_value(self, value):
        return None if value is None else json.loads(value)


class Bytes(Field):
    """Binary data (SQLite BLOB, PostgreSQL bytea). Peewee's BlobField asks the database for
    its binary type when the model is defined, before any app (and so any database) exists."""

    field_type = "BLOB"

    def db_value(self, value):
        return None if value is None else bytes(value)

    def python_value(self, value):
        return None if value is None else bytes(value)


class BaseModel(Model):
    class Meta:
        database = database


class User(BaseModel):
    name = TextField(unique=True)
    created_at = IntegerField()

    class Meta:
        table_name = "users"


class ApiKey(BaseModel):
    user = ForeignKeyField(User, column_name="user_id", backref="api_keys", on_delete="CASCADE")
    key_hash = TextField(unique=True)
    prefix = TextField()
    label = TextField(default="")
    created_at = IntegerField()
    last_used_at = IntegerField(null=True)
    revoked_at = IntegerField(null=True)
    default_source = TextField(null=True)

    class Meta:
        table_name = "api_keys"


class SigninToken(BaseModel):
    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    token_hash = TextField(unique=True)
    created_at = IntegerField()
    expires_at = IntegerField()
    used_at = IntegerField(null=True)

    class Meta:
        table_name = "signin_tokens"


class Signin(BaseModel):
    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    token_hash = TextField(unique=True)
    key = ForeignKeyField(ApiKey, column_name="key_id", null=True, on_delete="CASCADE")
    csrf = TextField()
    user_agent = TextField(default="")
    created_at = IntegerField()
    last_seen_at = IntegerField()
    ended_at = IntegerField(null=True)
    notices = JSONText(null=True)

    class Meta:
        table_name = "signins"


class Setting(BaseModel):
    name = TextField(primary_key=True)
    value = TextField()

    @staticmethod
    def sessions_deleted(user_id):
        """The row that holds when a session of the user was last deleted (a write stamp)."""
        return f"sessions_deleted:{user_id}"

    class Meta:
        table_name = "settings"


class Session(BaseModel):
    user = ForeignKeyField(User, column_name="user_id", backref="sessions", on_delete="CASCADE")
    external_id = TextField()
    source = TextField(null=True)
    title = TextField(null=True)
    project_path = TextField(null=True)
    project_name = TextField(null=True)
    model = TextField(null=True)
    provider = TextField(null=True)
    prompt_tokens = IntegerField(default=0)
    completion_tokens = IntegerField(default=0)
    total_tokens = IntegerField(default=0)
    input_tokens = IntegerField(default=0)
    output_tokens = IntegerField(default=0)
    cache_write_tokens = IntegerField(default=0)
    cache_read_tokens = IntegerField(default=0)
    cost = FloatField(default=0)
    cost_status = TextField(null=True)
    duration_ms = IntegerField(default=0)
    message_count = IntegerField(default=0)
    tool_call_count = IntegerField(default=0)
    end_reason = TextField(null=True)
    parent_external_id = TextField(null=True)
    extra = JSONText(null=True)
    created_at = IntegerField()
    updated_at = IntegerField()
    created_from_message = BooleanField(default=False)
    written_at = IntegerField(default=0)  # the write stamp; updated_at is the latest activity

    class Meta:
        table_name = "sessions"


class Message(BaseModel):
    session = ForeignKeyField(Session, column_name="session_id", backref="messages", on_delete="CASCADE")
    external_id = TextField()
    role = TextField()
    text_content = TextField(default="")
    model = TextField(null=True)
    prompt_tokens = IntegerField(default=0)
    completion_tokens = IntegerField(default=0)
    input_tokens = IntegerField(default=0)
    output_tokens = IntegerField(default=0)
    cache_write_tokens = IntegerField(default=0)
    cache_read_tokens = IntegerField(default=0)
    duration_ms = IntegerField(default=0)
    extra = JSONText(null=True)
    created_at = IntegerField()
    tool_text = TextField(default="")  # what search reads of the parts (search/texts.py)
    thinking_text = TextField(default="")

    class Meta:
        table_name = "messages"


class Part(BaseModel):
    message = ForeignKeyField(Message, column_name="message_id", backref="parts", on_delete="CASCADE")
    type = TextField()
    content = JSONText(null=True)
    extra = JSONText(null=True)
    order = IntegerField()

    class Meta:
        table_name = "parts"


class Curation(BaseModel):
    session = ForeignKeyField(Session, column_name="session_id", primary_key=True, on_delete="CASCADE")
    starred = BooleanField(default=False)
    note = TextField(null=True)
    eval_status = TextField(null=True)
    updated_at = IntegerField()

    class Meta:
        table_name = "curations"


class Tag(BaseModel):
    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    name = TextField()

    class Meta:
        table_name = "tags"


class SessionTag(BaseModel):
    session = ForeignKeyField(Session, column_name="session_id", on_delete="CASCADE")
    tag = ForeignKeyField(Tag, column_name="tag_id", on_delete="CASCADE")

    class Meta:
        table_name = "session_tags"
        primary_key = CompositeKey("session", "tag")


class FileTouch(BaseModel):
    message = ForeignKeyField(Message, column_name="message_id", on_delete="CASCADE")
    session = ForeignKeyField(Session, column_name="session_id", on_delete="CASCADE")
    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    path = TextField()
    rel_path = TextField(null=True)
    changed = BooleanField(default=False)

    class Meta:
        table_name = "file_touches"
        primary_key = CompositeKey("session", "message", "path")


class Share(BaseModel):
    slug = TextField(unique=True)
    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    session = ForeignKeyField(Session, column_name="session_id", on_delete="CASCADE")
    created_at = IntegerField()
    revoked_at = IntegerField(null=True)
    views = IntegerField(default=0)

    class Meta:
        table_name = "shares"


class ImportFile(BaseModel):
    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    path = TextField()
    size = IntegerField()
    mtime_ns = IntegerField()
    offset = IntegerField()
    lines = IntegerField(default=0)
    head = TextField(default="")

    class Meta:
        table_name = "import_files"
        primary_key = CompositeKey("user", "path")


class ImportResponse(BaseModel):
    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    response_key = TextField()
    session_external_id = TextField()
    message_external_id = TextField()
    model = TextField(null=True)
    input_tokens = IntegerField()
    output_tokens = IntegerField()
    cache_write_tokens = IntegerField()
    cache_read_tokens = IntegerField()
    cost_usd = FloatField(null=True)
    created_at = IntegerField()
    cache_write_1h_tokens = IntegerField(default=0)  # of cache_write_tokens, those kept for an hour

    class Meta:
        table_name = "import_responses"
        primary_key = CompositeKey("user", "response_key")


class Embedding(BaseModel):
    """A vector of semantic search: of a turn (``message`` its first message) or of a session."""
    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    session = ForeignKeyField(Session, column_name="session_id", on_delete="CASCADE")
    message = ForeignKeyField(Message, column_name="message_id", null=True, on_delete="CASCADE")
    model = TextField()
    digest = TextField()
    vector = Bytes()

    class Meta:
        table_name = "embeddings"


class EmbeddedSession(BaseModel):
    session = ForeignKeyField(Session, column_name="session_id", primary_key=True, on_delete="CASCADE")
    written_at = IntegerField()
    model = TextField()

    class Meta:
        table_name = "embedded_sessions"


class QuotaSnapshot(BaseModel):
    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    machine = TextField(default="")
    session_external_id = TextField(null=True)
    model = TextField(null=True)
    session_cost = FloatField(null=True)
    five_hour_used = FloatField(null=True)
    five_hour_resets_at = IntegerField(null=True)
    seven_day_used = FloatField(null=True)
    seven_day_resets_at = IntegerField(null=True)
    extra = JSONText(null=True)
    created_at = IntegerField()

    class Meta:
        table_name = "quota_snapshots"


class Budget(BaseModel):
    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    period = TextField()
    amount = FloatField()
    source = TextField(null=True)
    project = TextField(null=True)
    created_at = IntegerField()

    class Meta:
        table_name = "budgets"


class BudgetAlert(BaseModel):
    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    budget = ForeignKeyField(Budget, column_name="budget_id", on_delete="CASCADE")
    period_start = IntegerField()
    threshold = IntegerField()
    spent = FloatField()
    amount = FloatField()
    cost_basis = TextField(null=True)
    created_at = IntegerField()

    class Meta:
        table_name = "budget_alerts"


class BudgetDelivery(BaseModel):
    alert = ForeignKeyField(BudgetAlert, column_name="alert_id", on_delete="CASCADE")
    channel = TextField()
    attempts = IntegerField(default=0)
    next_at = IntegerField()
    delivered_at = IntegerField(null=True)
    last_error = TextField(null=True)

    class Meta:
        table_name = "budget_deliveries"


class BudgetChannels(BaseModel):
    user = ForeignKeyField(User, column_name="user_id", primary_key=True, on_delete="CASCADE")
    webhook_url = TextField(null=True)
    webhook_secret = TextField()
    ntfy_url = TextField(null=True)
    desktop = BooleanField(default=False)

    class Meta:
        table_name = "budget_channels"
