"""pgcapacity: capacity limits enforced inside PostgreSQL.

The sources live in the repository's ``api/`` folder and are installed, editable or not,
as the package ``pgcapacity``. Imported as ``api`` (a source tree on sys.path) the modules
would load a second time under other names, with classes that differ from pgcapacity's
own, so that is refused.
"""

if __name__ != "pgcapacity":
    raise ImportError(
        f"the pgcapacity sources are imported as {__name__!r}: install the project "
        "(pip install -e .) and import pgcapacity"
    )

from importlib.metadata import version

__version__ = version("pgcapacity")
