"""`medport ig install PATH`: install an implementation guide package (a package .tgz as published on
packages.fhir.org, or the package unpacked in a folder) into the store (docs/conformance.md)."""
from __future__ import annotations

import sys
from collections.abc import Callable


def add_parsers(commands, settings_of: Callable) -> None:
    ig = commands.add_parser("ig", help="implementation guides: install a FHIR package's definitions")
    sub = ig.add_subparsers(dest="ig_command", required=True)
    p = sub.add_parser("install", help="install the StructureDefinitions, ValueSets, CodeSystems, ConceptMaps, "
                                       "SearchParameters, NamingSystems and ImplementationGuide of a package "
                                       "(.tgz or folder), created or updated by url and version, all or none")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.add_argument("--base-url", help="base URL the server runs under (MEDPORT_BASE_URL)")
    p.set_defaults(run=lambda args: _install(args, settings_of))


def _install(args, settings_of: Callable) -> int:
    from .conformance import install, package
    from .context import ServerContext
    from .errors import FhirError
    from .storage import open_store
    try:
        found = package.read(args.path)
    except package.NotAPackage as e:
        print(f"error: {_printable(str(e))}", file=sys.stderr)
        return 2
    settings = settings_of(args)
    store = open_store(settings)
    try:
        counts = install.install(ServerContext(settings, store), found)
    except (FhirError, package.NotAPackage) as e:
        print(_printable(f"error: {found.name}#{found.version} was not installed (nothing was written): {e}"),
              file=sys.stderr)
        return 2
    finally:
        store.close()
    by_type = ", ".join(f"{counts[t]} {t}" for t in install.INSTALLED if counts[t])
    print(f"installed {found.name}#{found.version}: {counts['created']} created, {counts['updated']} updated"
          + (f" ({by_type})" if by_type else "")
          + (f"; {counts['kept']} kept as the server ships them" if counts["kept"] else ""))
    return 0


def _printable(text: str) -> str:
    """What a package says, fit for the operator's terminal: control characters (escape sequences) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
