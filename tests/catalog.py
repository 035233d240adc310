"""A comparable snapshot of everything pgcapacity puts in the database catalogs."""

from __future__ import annotations

import psycopg

QUERIES = {
    "columns": """
        SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default,
               is_identity, ordinal_position
          FROM information_schema.columns WHERE table_schema = 'capacity'
         ORDER BY table_name, ordinal_position""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace = 'capacity'::regnamespace
         ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
         WHERE schemaname = 'capacity' ORDER BY 1, 2""",
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), p.proacl::text
          FROM pg_proc p WHERE p.pronamespace = 'capacity'::regnamespace ORDER BY 1""",
    "views": """
        SELECT c.relname, pg_get_viewdef(c.oid, true), c.relacl::text
          FROM pg_class c WHERE c.relnamespace = 'capacity'::regnamespace AND c.relkind IN ('v', 'm')
         ORDER BY 1""",
    "types": """
        SELECT t.typname, t.typtype::text,
               (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                  FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0),
               (SELECT string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)
          FROM pg_type t
         WHERE t.typnamespace = 'capacity'::regnamespace AND t.typtype IN ('c', 'e')
           AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
         ORDER BY 1""",
    "comments": """
        SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c
         WHERE c.relnamespace = 'capacity'::regnamespace ORDER BY 1""",
    "table_acl": """
        SELECT c.relname, c.relacl::text FROM pg_class c
         WHERE c.relnamespace = 'capacity'::regnamespace AND c.relkind = 'r' ORDER BY 1""",
    "migrations": "SELECT name, kind, checksum, package_version FROM capacity.migrations ORDER BY name",
}


def snapshot(conninfo: str) -> dict[str, list[tuple]]:
    with psycopg.connect(conninfo) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in QUERIES.items()}
