"""Trigram indexes for staff search by name or email, on PostgreSQL only.

Staff search with `icontains`, which Django compiles on PostgreSQL to
`UPPER("members_member"."full_name"::text) LIKE UPPER('%…%')`. A B-tree cannot serve a
leading-wildcard LIKE; a pg_trgm GIN index on exactly that expression can, so these index
`UPPER(col::text)`: any other expression (LOWER, the bare column) the planner would not match.
SQLite (the embedded default) has no pg_trgm and scans its small tables quickly, so there the
operations do nothing. They change no model state: `makemigrations` has nothing to add.
"""

from django.db import migrations

INDEXES = {
    "member_full_name_trgm": "full_name",
    "member_email_trgm": "email",
}


class PostgresOnlySQL(migrations.RunSQL):
    """RunSQL that applies on PostgreSQL and is a no-op on every other database."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0004_member_account_log"),
    ]

    operations = [
        # pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may create it. It is
        # left in place on the way back: other objects may have come to use it since.
        PostgresOnlySQL(
            sql="CREATE EXTENSION IF NOT EXISTS pg_trgm",
            reverse_sql=migrations.RunSQL.noop,
        ),
        *(
            PostgresOnlySQL(
                sql=(
                    f'CREATE INDEX "{name}" ON "members_member" '
                    f'USING gin (UPPER("{column}"::text) gin_trgm_ops)'
                ),
                reverse_sql=f'DROP INDEX IF EXISTS "{name}"',
            )
            for name, column in INDEXES.items()
        ),
    ]
