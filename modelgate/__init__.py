"""modelgate's command line: one ``typer`` app that mounts the commands each package owns.

This package is the top of the dependency graph and holds no domain logic: ``sbom/cli.py``,
``attest/cli.py`` and ``engine/cli.py`` define their commands; ``modelgate.cli`` assembles them and
turns errors into exit codes (0 success, 1 verification failed, 2 usage or input error).

    $ modelgate verify ./model --bundle model.sigstore.json --key release.pub.pem --json
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("modelgate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
