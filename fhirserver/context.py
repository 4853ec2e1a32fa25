"""What every interaction needs: the settings, the store and the request's access rights.

Also the app's one init step (initialize): what a store needs written before a server runs on it.
Constructing a ServerContext (create_app, every worker) only reads; on a store never initialised
it runs the init step once, lazily (idempotent and safe when several processes do it at once)."""
from __future__ import annotations

import contextlib
import functools
import logging
import time
from dataclasses import dataclass, field
from types import MappingProxyType

from .config import Settings
from .repository import Repository
from .search import identifier_forms
from .smart_auth.access import UNRESTRICTED, Access
from .storage.base import Store
from .uhid import number
from .uhid.identifier import CONFIG_KIND, pinned_system, read_pinned_system

INIT_KEY = "initialized"
INIT_VERSION = 2        # raise when initialize() gains a step: stores initialised before run it again

log = logging.getLogger(__name__)


@dataclass
class ServerContext:
    settings: Settings
    store: Store
    access: Access = field(default=UNRESTRICTED)    # the request's rights (smart_auth.access)
    uhid_system: str = ""        # the store's UHID system (uhid/identifier.py pinned_system), found once
    identifier_forms: identifier_forms.Forms = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self):
        if not self.uhid_system:
            if not initialized(self.store):
                log.info("initialising a fresh store (medport db init does it explicitly)")
                initialize(self.settings, self.store)
            self.uhid_system = read_pinned_system(self.store, self.settings)
        if not self.identifier_forms:
            self.identifier_forms = MappingProxyType({self.uhid_system: number.canonical})

    def acting_as(self, access: Access) -> "ServerContext":
        """The same server, for one request with these rights. A shallow copy without the cached
        repository (which carries this context's access): dataclasses.replace would run every
        field and __post_init__ again on each request (issue 16)."""
        clone = object.__new__(ServerContext)
        clone.__dict__.update(self.__dict__)
        clone.__dict__.pop("repo", None)
        clone.access = access
        return clone

    @property
    def definitions(self):
        """The definitions this server knows (conformance/): public standards written by administrators
        and the CLI alone, so they are read without the request's guard; the same for every request."""
        from .conformance import definitions
        return definitions(self.store)

    @property
    def terminology(self):
        """The terminology engine over those definitions (terminology/: $expand, bindings, token :in)."""
        from .terminology import for_store
        return for_store(self.store)

    @functools.cached_property
    def repo(self) -> Repository:
        """The request's repository: every resource read, search and write of an interaction or an
        operation goes through it, with this context's access applied (repository.py). The store
        itself (ServerContext.store) is for infrastructure: records, blobs, init, the CLI."""
        return Repository(self.store, self.access, self.base, unit=self._unit, first_use=self._first_use)

    def _first_use(self, rtype: str) -> None:
        _served().ensure(self, rtype)

    def _unit(self, provenance):
        from .governance.provenance import unit
        return unit(self, provenance)

    @contextlib.contextmanager
    def forms(self):
        """This server's identifier forms active (a request has them from app.py; work outside one
        that parses searches, e.g. a background job, uses this)."""
        with identifier_forms.active(self.identifier_forms):
            yield

    @property
    def base(self) -> str:
        """The server's base URL: references under it are local."""
        return self.settings.base_url


@functools.cache
def _served():
    """conformance.served, imported once on first use (it imports this module): an import statement
    on every read cost more than the check it guards (issue 16)."""
    from .conformance import served
    return served


def initialized(store: Store) -> bool:
    record = store.get_record(CONFIG_KIND, INIT_KEY)
    return record is not None and record.get("version", 0) >= INIT_VERSION


def initialize(settings: Settings, store: Store) -> None:
    """The one init step, idempotent: the store's indexes and collections (Store.init), the UHID
    system pinned, NamingSystem/uhid and Med-Port's own definitions (conformance/seed.py) written or
    brought up to date, patient account links recorded,
    a health card issuer key made (the JWKS is never empty: verifiers cache it). `medport serve` runs
    it once before its workers start, `medport db init` on demand, a fresh store lazily."""
    from .conformance import seed
    from .health_cards.issuer_keys import IssuerKeys
    from .smart_auth.accounts import Users
    from .uhid import naming_system
    store.init()
    ctx = ServerContext(settings, store, uhid_system=pinned_system(store, settings))
    naming_system.ensure(ctx)
    seed.ensure(ctx)
    Users(store).link_existing()
    IssuerKeys(store).active()
    store.put_record(CONFIG_KIND, INIT_KEY, {"version": INIT_VERSION, "at": time.time()})
