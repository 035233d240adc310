"""Versioned install of the SQL (docs/architecture.md, "Install and upgrade").

The install is one SQL script (the *bundle*): numbered migrations applied once and
refused when edited afterwards, function and view files re-applied when their content
changes, every step recorded with its checksum in ``capacity.migrations``. The whole
bundle runs in one transaction under an advisory lock, so concurrent installers queue
and an interrupted install leaves nothing behind. ``pgcapacity migrate`` executes exactly
the text that ``pgcapacity sql`` prints for ``psql -f``, so both paths give one result.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from pgcapacity import __version__

MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Checksums an applied migration may still be recorded with although its file now reads
# otherwise: edits of comments only, which change nothing a database holds (as Liquibase's
# validCheckSum). The installer records the file's checksum instead and runs nothing.
EARLIER_CHECKSUMS = {
    # a comment's reference to a document outside the repository, reworded
    "migrations/0001_schema.sql": (
        "b0d2fdcb4fea5f01942f7875ac6f7ca1672e28f54f8ea34d412bee6f7b49145e",
    ),
}
# (pgcapacity namespace, installer) - see capacity._lock_namespace()
INSTALL_LOCK = (1885823856, -2)


def sql_dir() -> Path:
    """The SQL sources: pgcapacity/sql in an installed wheel, the checkout's sql/ folder
    in an editable install."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "sql", here.parent / "sql"):
        if (candidate / "migrations").is_dir():
            return candidate
    raise FileNotFoundError("pgcapacity SQL sources not found next to the pgcapacity package")


@dataclass(frozen=True)
class Step:
    name: str  # e.g. "migrations/0001_schema.sql"
    kind: str  # "migration" | "function" | "view"
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def steps(root: Path | None = None) -> list[Step]:
    """Every install step in order: migrations, then functions, then views."""
    root = root or sql_dir()
    found: list[Step] = []
    for folder, kind in (("migrations", "migration"), ("functions", "function"), ("views", "view")):
        for path in sorted((root / folder).glob("*.sql")):
            if kind == "migration" and not MIGRATION_NAME.match(path.name):
                raise ValueError(f"badly named migration {path.name}: expected NNNN_snake_case.sql")
            found.append(Step(f"{folder}/{path.name}", kind, path.read_text()))
    numbers = [s.name.split("/")[1][:4] for s in found if s.kind == "migration"]
    if len(numbers) != len(set(numbers)):
        raise ValueError(f"two migrations share a number: {sorted(numbers)}")
    return found


def _dollar_quote(text: str) -> str:
    tag = "pgcapacity"
    while f"${tag}$" in text:
        tag += "_"
    return f"${tag}${text}${tag}$"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _text_array(items) -> str:
    """A text[] literal of step names or checksums (none holds a comma or a brace)."""
    return _literal("{" + ",".join(items) + "}")


BOOTSTRAP = """\
CREATE SCHEMA IF NOT EXISTS capacity;
COMMENT ON SCHEMA capacity IS 'pgcapacity: capacity limits enforced inside PostgreSQL';
CREATE TABLE IF NOT EXISTS capacity.migrations (
    name            text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('migration', 'function', 'view')),
    checksum        text NOT NULL,
    package_version text NOT NULL,
    applied_at      timestamptz NOT NULL DEFAULT now()
);

-- Applies one step unless it is recorded with the same checksum; refuses edited migrations
-- (p_earlier: checksums of comment-only earlier versions, re-recorded without running).
CREATE FUNCTION pg_temp.pgcapacity_apply(p_name text, p_kind text, p_checksum text, p_sql text,
                                         p_earlier text[] DEFAULT '{}')
RETURNS TABLE (step text, outcome text)
LANGUAGE plpgsql AS $apply$
DECLARE
    v_old text;
BEGIN
    SELECT m.checksum INTO v_old FROM capacity.migrations AS m WHERE m.name = p_name;
    IF v_old = p_checksum THEN
        RETURN QUERY SELECT p_name, 'unchanged';
        RETURN;
    END IF;
    IF p_kind = 'migration' AND v_old = ANY (p_earlier) THEN
        UPDATE capacity.migrations AS m SET checksum = p_checksum WHERE m.name = p_name;
        RETURN QUERY SELECT p_name, 'reworded';
        RETURN;
    END IF;
    IF v_old IS NOT NULL AND p_kind = 'migration' THEN
        RAISE EXCEPTION 'pgcapacity: migration % was edited after it was applied', p_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('recorded checksum %s, file checksum %s', v_old, p_checksum),
                  HINT = 'Applied migrations are append-only: restore the file and add a new migration.';
    END IF;
    EXECUTE p_sql;
    INSERT INTO capacity.migrations AS m (name, kind, checksum, package_version)
    VALUES (p_name, p_kind, p_checksum, __VERSION__)
    ON CONFLICT (name) DO UPDATE
       SET checksum = EXCLUDED.checksum, package_version = EXCLUDED.package_version,
           applied_at = now();
    RETURN QUERY SELECT p_name, CASE WHEN v_old IS NULL THEN 'applied' ELSE 'reapplied' END;
END
$apply$;
"""

REFUSE_NEWER = """\
DO $refuse$
DECLARE
    v_unknown text;
BEGIN
    SELECT string_agg(m.name, ', ' ORDER BY m.name) INTO v_unknown
      FROM capacity.migrations AS m
     WHERE m.kind = 'migration' AND m.name <> ALL (__KNOWN__::text[]);
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'pgcapacity: the database has migrations this version (__VERSION_RAW__) does not know: %', v_unknown
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Install the newer pgcapacity release that applied them.';
    END IF;
END
$refuse$;
"""

FINISH = """\
-- Function and view files no longer shipped (their functions live in other files now).
DELETE FROM capacity.migrations AS m WHERE m.kind <> 'migration' AND m.name <> ALL (__FILES__::text[]);
-- Least privilege: nothing is executable by PUBLIC; app roles are re-granted (new functions).
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA capacity FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA capacity FROM PUBLIC;
SELECT capacity.grant_app_access(r.role_name)
  FROM capacity.app_roles AS r JOIN pg_roles AS pr ON pr.rolname = r.role_name;
"""


def bundle(root: Path | None = None) -> str:
    """The complete install script: idempotent, transactional, concurrency-safe."""
    all_steps = steps(root)
    known = [s.name for s in all_steps if s.kind == "migration"]
    parts = [
        f"-- pgcapacity {__version__} install script, generated by `pgcapacity sql`.",
        "-- Apply with: psql -v ON_ERROR_STOP=1 -f install.sql  (idempotent; safe to run concurrently)",
        "BEGIN;",
        "SET LOCAL client_min_messages = warning;",
        "SET LOCAL search_path = pg_catalog, pg_temp;",
        f"SELECT pg_advisory_xact_lock({INSTALL_LOCK[0]}, {INSTALL_LOCK[1]});",
        BOOTSTRAP.replace("__VERSION__", _literal(__version__)),
        REFUSE_NEWER.replace("__KNOWN__", _text_array(known)).replace(
            "__VERSION_RAW__", __version__
        ),
    ]
    for step in all_steps:
        earlier = EARLIER_CHECKSUMS.get(step.name, ())
        parts.append(
            f"SELECT * FROM pg_temp.pgcapacity_apply({_literal(step.name)}, {_literal(step.kind)}, "
            f"{_literal(step.checksum)}, {_dollar_quote(step.sql)}"
            + (f", {_text_array(earlier)}" if earlier else "")
            + ");"
        )
    files = [s.name for s in all_steps if s.kind != "migration"]
    parts += [
        FINISH.replace("__FILES__", _text_array(files)),
        "DROP FUNCTION pg_temp.pgcapacity_apply(text, text, text, text, text[]);",
        "COMMIT;",
        "",
    ]
    return "\n".join(parts)


def migrate(conninfo: str, root: Path | None = None) -> list[tuple[str, str]]:
    """Installs or upgrades pgcapacity (from `root`, default: the packaged SQL);
    returns (step, outcome) for every step."""
    outcomes: list[tuple[str, str]] = []
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(bundle(root).encode())
        while True:
            if cur.description and [c.name for c in cur.description] == ["step", "outcome"]:
                outcomes.extend(cur.fetchall())
            if not cur.nextset():
                break
    return outcomes


@dataclass(frozen=True)
class Status:
    package_version: str
    installed_version: str | None
    pending: list[str]  # steps not applied or whose file changed
    unknown: list[str]  # applied migrations this package does not know (database is newer)

    @property
    def up_to_date(self) -> bool:
        return self.installed_version is not None and not self.pending and not self.unknown


def status(conninfo: str) -> Status:
    """Compares the database with this package's SQL files, without changing anything."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('capacity.migrations') IS NOT NULL").fetchone()
        if not (exists and exists[0]):
            return Status(__version__, None, [s.name for s in steps()], [])
        recorded = dict(conn.execute("SELECT name, checksum FROM capacity.migrations").fetchall())
        row = conn.execute(
            "SELECT CASE WHEN to_regprocedure('capacity.version()') IS NOT NULL"
            " THEN capacity.version() END"
        ).fetchone()
    files = steps()
    known = {s.name for s in files}
    pending = [s.name for s in files if recorded.get(s.name) != s.checksum]
    unknown = sorted(n for n in recorded if n.startswith("migrations/") and n not in known)
    return Status(__version__, row[0] if row else None, pending, unknown)
