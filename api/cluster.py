"""A sharded pgcapacity on PL/Proxy (docs/sharding.md): N shard databases, each an
ordinary pgcapacity install, and a proxy database offering the same capacity.* functions,
routed by code or claim id.

``install`` is idempotent and is also the upgrade: it migrates every shard to this
package's version, gives each shard its range of claim ids (shard k numbers its claims
from k << 48, so an id names its shard and ids are unique across the cluster), and
rebuilds the proxy's stateless ``capacity`` schema from ``sql/proxy`` (the placement
tables in ``capacity_cluster`` are kept). ``proxy_script`` is the same proxy install as
one SQL script for psql.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgcapacity import __version__, installer
from pgcapacity.db import describe

SERVER = "pgcapacity_shards"
SELF = "pgcapacity_proxy"  # the proxy itself: placement is committed through it
ID_BITS = 48  # claim ids of shard k: k << 48 .. ((k + 1) << 48) - 1
MAX_SHARDS = 1 << 14


class ClusterError(RuntimeError):
    """The cluster cannot be installed as asked (the message says why)."""


def claim_id_range(shard: int) -> tuple[int, int]:
    return max(shard << ID_BITS, 1), ((shard + 1) << ID_BITS) - 1


def proxy_files() -> list[str]:
    """The proxy's SQL in install order: its types, the shards' pure validation helpers
    and document parser (the same files, for identical rules and errors), routing, the remote calls, then
    one file per public function, and the views."""
    root = installer.sql_dir()
    proxy = root / "proxy"
    files = [proxy / "types.sql"]
    files += [root / "functions" / name for name in ("_validation.sql", "_code_specs.sql")]
    files += [proxy / "cluster.sql", proxy / "remote.sql", proxy / "placement.sql"]
    files += [*sorted((proxy / "functions").glob("*.sql")), proxy / "views.sql"]
    return [f.read_text() for f in files]


def proxy_script(proxy_url: str, shard_urls: list[str]) -> str:
    """The proxy install as one transaction, for `psql -v ON_ERROR_STOP=1 -f`."""
    return f"BEGIN;\n{_proxy_sql(proxy_url, shard_urls)}\nCOMMIT;\n"


def _proxy_sql(proxy_url: str, shard_urls: list[str]) -> str:
    options = ", ".join(f"p{i} {_literal(_stored(url))}" for i, url in enumerate(shard_urls))
    head = f"""CREATE EXTENSION IF NOT EXISTS plproxy;
CREATE SCHEMA IF NOT EXISTS capacity_cluster;
DROP SCHEMA IF EXISTS capacity CASCADE;  -- stateless on a proxy: rebuilt by every install
CREATE SCHEMA capacity;
DROP SERVER IF EXISTS {SERVER} CASCADE;
CREATE SERVER {SERVER} FOREIGN DATA WRAPPER plproxy OPTIONS (connection_lifetime '1800', {options});
CREATE USER MAPPING FOR PUBLIC SERVER {SERVER};
DROP SERVER IF EXISTS {SELF} CASCADE;
CREATE SERVER {SELF} FOREIGN DATA WRAPPER plproxy OPTIONS (p0 {_literal(_stored(proxy_url))});
CREATE USER MAPPING FOR PUBLIC SERVER {SELF};
"""
    return head + "\n".join(proxy_files()) + PROXY_GRANTS


# Least privilege on the proxy, as on a server: nothing is executable by PUBLIC; roles
# given access with grant_app_access are granted the rebuilt functions again.
PROXY_GRANTS = """
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA capacity, capacity_cluster FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA capacity_cluster FROM PUBLIC;
SELECT capacity_cluster.grant_on_proxy(r.role_name)
  FROM capacity_cluster.app_roles AS r JOIN pg_catalog.pg_roles AS pr ON pr.rolname = r.role_name;
"""

# What a stored connection string leaves out: PL/Proxy then connects as the role calling
# the proxy (its current_user), so each role reaches the shards as itself, with the
# shards' own grants, and no password is kept where every role on the proxy can read it.
CREDENTIALS = ("user", "password")


def _stored(url: str) -> str:
    """A connection string as the proxy keeps it: without user and password."""
    options = conninfo_to_dict(url)
    return make_conninfo(**{k: v for k, v in options.items() if k not in CREDENTIALS})


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def check_count(shard_urls: list[str]) -> None:
    n = len(shard_urls)
    if n < 1 or n > MAX_SHARDS or n & (n - 1):
        raise ClusterError(
            f"{n} shards: PL/Proxy partitions a cluster into a power of two (1, 2, 4, 8, ...)"
        )


def _identity(conn: psycopg.Connection) -> tuple:
    """What tells two databases apart even behind different connection strings."""
    return conn.execute(
        "SELECT (SELECT system_identifier FROM pg_control_system()), current_database()"
    ).fetchone()


def _number_claims(conn: psycopg.Connection, shard: int, url: str) -> None:
    """Gives the shard its claim id range, once; refuses a database whose claims (or
    earlier range) say it is another shard."""
    low, high = claim_id_range(shard)
    seq = conn.execute(
        "SELECT s.seqmin, s.seqmax FROM pg_sequence AS s"
        " WHERE s.seqrelid = pg_get_serial_sequence('capacity.claims', 'claim_id')::regclass"
    ).fetchone()
    if seq == (low, high):
        return
    if seq[0] > 1 or seq[1] < (1 << 62):
        raise ClusterError(
            f"shard {describe(url)} numbers claims from {seq[0]}: it is shard {seq[0] >> ID_BITS}"
            f" of a cluster, not shard {shard}; list the shards in their order"
        )
    first, last = conn.execute(
        "SELECT min(claim_id), max(claim_id) FROM capacity.claims"
    ).fetchone()
    if first is not None and (first < low or last > high):
        raise ClusterError(
            f"shard {describe(url)} already has claims numbered {first}..{last}, outside shard"
            f" {shard}'s ids ({low}..{high}): only the first shard may start with claims"
        )
    conn.execute(
        sql.SQL(
            "ALTER TABLE capacity.claims ALTER COLUMN claim_id SET MINVALUE {} SET MAXVALUE {}"
            " SET START WITH {} RESTART WITH {}"
        ).format(
            sql.Literal(low),
            sql.Literal(high),
            sql.Literal(low),
            sql.Literal(max(low, (last or 0) + 1)),
        )
    )


def install(proxy_url: str, shard_urls: list[str]) -> list[str]:
    """Installs or upgrades the cluster; returns what it did, one line per step."""
    check_count(shard_urls)
    done: list[str] = []
    seen: dict[tuple, int] = {}
    for shard, url in enumerate(shard_urls):
        with psycopg.connect(url, autocommit=True) as conn:
            ident = _identity(conn)
        if ident in seen:
            raise ClusterError(f"shards {seen[ident]} and {shard} are the same database")
        seen[ident] = shard
    with psycopg.connect(proxy_url, autocommit=True) as conn:
        if _identity(conn) in seen:
            raise ClusterError("the proxy must be a database of its own, not one of the shards")
    for shard, url in enumerate(shard_urls):
        steps = installer.migrate(url)
        changed = sum(1 for _, what in steps if what != "unchanged")
        with psycopg.connect(url, autocommit=True) as conn:
            _number_claims(conn, shard, url)
        done.append(f"shard {shard}: pgcapacity {__version__}, {changed} step(s) applied")
    placement = _existing_placement(shard_urls)
    with psycopg.connect(proxy_url) as conn:  # one transaction: all of it or nothing
        conn.execute(_proxy_sql(proxy_url, shard_urls))
        conn.execute(
            "SELECT capacity_cluster.record_placement(%s, %s, %s, %s)",
            placement,
        )
    done.append(f"proxy: {len(shard_urls)} shard(s), capacity.* routed by code and claim id")
    return done


def _existing_placement(shard_urls: list[str]) -> tuple[list, list, list, list]:
    """Where the codes the shards hold already live (a database that held codes before it
    joined, or placement to check again): (pools, their shards, codes, their shards).
    Refuses a pool found on two shards."""
    pools: dict[str, int] = {}
    codes: dict[str, int] = {}
    for shard, url in enumerate(shard_urls):
        with psycopg.connect(url) as conn:
            for code, pool in conn.execute("SELECT code, pool FROM capacity.codes"):
                if pools.setdefault(pool, shard) != shard:
                    raise ClusterError(
                        f"pool {pool} has codes on shards {pools[pool]} and {shard}:"
                        " a pool lives on one shard"
                    )
                codes[code] = shard
    return list(pools), list(pools.values()), list(codes), list(codes.values())


@dataclass(frozen=True)
class ShardStatus:
    shard: int
    server: str
    version: str | None
    codes: int | None
    units_in_use: int | None
    active_claims: int | None
    error: str | None = None


# The options of the proxy's foreign server: no row on a database that is not a proxy.
SHARD_OPTIONS = f"SELECT srvoptions FROM pg_catalog.pg_foreign_server WHERE srvname = '{SERVER}'"


def shard_urls(proxy_url: str) -> list[str]:
    """The shards' connection strings, in shard order, from the proxy's foreign server,
    with the proxy URL's credentials (the role PL/Proxy reaches them as)."""
    with psycopg.connect(proxy_url) as conn:
        urls = shard_urls_of(conn.execute(SHARD_OPTIONS).fetchone(), proxy_url)
    if urls is None:
        raise ClusterError("no pgcapacity cluster on this proxy: run `pgcapacity cluster install`")
    return urls


def shard_urls_of(row: tuple | None, proxy_url: str) -> list[str] | None:
    """The shards' connection strings from SHARD_OPTIONS's row (p0, p1, ...), completed
    with the user and password of `proxy_url`, as PL/Proxy connects for that role (a
    string stored with a user of its own keeps it); None: no row."""
    if row is None:
        return None
    options = dict(o.split("=", 1) for o in row[0])
    stored = [options[f"p{i}"] for i in range(sum(1 for k in options if k[1:].isdigit()))]
    caller = {k: v for k, v in conninfo_to_dict(proxy_url).items() if k in CREDENTIALS}
    return [make_conninfo(**(caller | conninfo_to_dict(url))) for url in stored]


def status(proxy_url: str) -> list[ShardStatus]:
    found = []
    for shard, url in enumerate(shard_urls(proxy_url)):
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                version, codes, units, claims = conn.execute(
                    "SELECT capacity.version(), (SELECT count(*) FROM capacity.codes),"
                    " (SELECT coalesce(sum(usage_count), 0) FROM capacity.code_usage),"
                    " (SELECT count(*) FROM capacity.claims WHERE released_at IS NULL)"
                ).fetchone()
            found.append(ShardStatus(shard, describe(url), version, codes, int(units), claims))
        except psycopg.Error as err:
            found.append(
                ShardStatus(shard, describe(url), None, None, None, None, str(err).strip())
            )
    return found
