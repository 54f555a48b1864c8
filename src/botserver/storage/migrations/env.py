"""Alembic runs inside the application's own connection (see Database.migrate)."""

from alembic import context

from botserver.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - we always pass one
    raise RuntimeError("Run migrations through `botserver migrate`.")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
