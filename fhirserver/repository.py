"""The one way an interaction or operation reaches resources: a request-scoped repository that applies
the request's Access (smart_auth/access.py) itself, on every call (docs/architecture.md, "Repository").

- read / vread / history: outside the token's reach answers like a resource that is not there (404:
  no existence oracle); the versions of a history are judged by their own content (Access.versions).
- search / includes: the type must be granted (403), and the store ANDs every set of resources the
  search touches with the guard.
- matches: conditional criteria (If-None-Exist, conditional update/delete, conditional entries), run
  under the interaction's guard intersected with the search guard (criteria are a search).
- resolve: conditional references ('Patient?identifier=s|v'), among what the request may search.
- transaction(): one unit of work whose read/matches/resolve apply the same rules against the open
  transaction; its writes go through the single admitted write path, common.store_new_version and
  common.store_delete (interactions/common.py), given the guarded transaction.

The raw store stays on ServerContext.store for infrastructure (records, blobs, init, the CLI).
Server-side work that must see everything (audit, the server's Provenance, registration, the issuer's
attested record) asks for an unrestricted repository explicitly: ctx.acting_as(UNRESTRICTED).repo.
"""
from __future__ import annotations

import contextlib
from typing import Callable

from .audit_log import trail
from .errors import NotFound
from .interactions.instants import parse_instant
from .smart_auth.access import Access, intersect
from .storage.base import Page, Store, Transaction, Version


class Repository:
    """The store as one request may use it. Cheap to make (no store call): one per request."""

    def __init__(self, store: Store, access: Access, base: str, unit: Callable | None = None,
                 first_use: Callable[[str], None] | None = None):
        self._store = store
        # first_use(rtype): what must be in place before a request reads a type or searches it by type (the
        # shipped definitions a store serves, conformance/served.py; the search interaction asks ready());
        # nothing by default. Exports, system searches and conditional criteria read what the store holds
        self._first_use = first_use or (lambda _rtype: None)
        self.access = access
        self.base = base
        # unit(provenance) -> context manager yielding the raw store transaction (the server's Provenance
        # recorded in it: governance/provenance.unit); a plain store transaction by default
        self._unit = unit or (lambda _provenance: store.transaction())

    # -- reads over committed data ---------------------------------------------------------------
    def allow(self, interaction: str, rtype: str) -> None:
        """403 unless the interaction is granted on rtype at all (before anything is read)."""
        self.access.allow(interaction, rtype)

    def check(self, rtype: str, id: str, interaction: str = "read") -> None:
        """403 when the interaction is not granted on rtype; 404 when rtype/id is outside the reach."""
        self.access.allow(interaction, rtype)
        self._first_use(rtype)
        self.access.check_visible(self._visible_search, interaction, rtype, id)

    def read(self, rtype: str, id: str, interaction: str = "read") -> Version | None:
        """The current version (None: never stored; a deletion version when deleted), after check()."""
        self.check(rtype, id, interaction)
        found = self._store.read(rtype, id)
        trail.touched((found,))
        return found

    def vread(self, rtype: str, id: str, version: int, interaction: str = "vread") -> Version | None:
        """One version, or None when it does not exist or its own content is outside the grant."""
        self.check(rtype, id, interaction)
        found = self._store.vread(rtype, id, version)
        if found is None or not self.access.versions(interaction, rtype, [found], self.base):
            return None
        trail.touched((found,))
        return found

    def search(self, rtype: str, query, *, sort=(), limit: int, cursor: str | None = None,
               total: str = "none", interaction: str = "search-type") -> Page:
        """A page of the current resources matching query, inside the guard (403 if not granted)."""
        self.access.allow(interaction, rtype)
        page = self._store.search(rtype, query, sort=sort, limit=limit, cursor=cursor, total=total,
                                  guard=self.access.guard(interaction))
        trail.touched(page.items)
        return page

    def includes(self, items: list[Version], includes) -> list[Version]:
        """_include/_revinclude targets of a page, each inside the read guard."""
        found = self._store.includes(items, includes, guard=self.access.guard("read"))
        trail.touched(found)
        return found

    def snapshot(self):
        """One committed state for several reads (a page and its includes)."""
        return self._store.snapshot()

    def ready(self, rtype: str, interaction: str = "search-type") -> None:
        """Put in place what a read of rtype needs (first_use) now, outside any snapshot (which only reads);
        403 first when the interaction is not granted."""
        self.access.allow(interaction, rtype)
        self._first_use(rtype)

    def matches(self, rtype: str, query, limit: int, interaction: str) -> list[Version]:
        """Current resources matching conditional criteria, among those the request may touch with
        this interaction and search (committed data)."""
        guard = criteria_guard(self.access, rtype, interaction)
        found = self._store.search(rtype, query, limit=limit, total="none", guard=guard).items
        trail.touched(found)          # a conditional create that matches answers with the match
        return found

    def resolve(self, rtype: str, query, limit: int = 2) -> list[Version]:
        """Matches of a conditional reference, among what the request may search (none: no 403)."""
        return self._store.search(rtype, query, limit=limit, total="none",
                                  guard=self.access.guard("search-type")).items

    def history(self, rtype: str | None, id: str | None, *, since: str | None = None, limit: int,
                cursor: str | None = None, max_total: int) -> Page:
        """A history page (instance, type or system level) of what the request may see; see
        interactions/history.py for how pages, totals and next links are kept honest. since: the _since
        parameter as given, parsed after the access checks (a hidden resource answers 404 whatever it
        is); max_total: the most admitted versions judged once more to give Bundle.total."""
        access = self.access
        interaction = "history-instance" if id is not None else "history-type" if rtype else "history-system"
        if id is not None:
            self.check(rtype, id, interaction)
        elif rtype is not None:
            access.allow(interaction, rtype)
            self._first_use(rtype)
        # no restriction on the type: no guard (a guarded store history leaves deletions out, having no
        # content to judge them by; an unconfined reader sees them, e.g. in an export's `deleted`)
        unconfined = rtype is not None and not access.confined(interaction, rtype)
        guard = None if unconfined else access.guard(interaction)
        since = parse_instant(since, "_since") if since is not None else None

        def fetch(at):
            return self._store.history(rtype, id, since=since, limit=limit, cursor=at, guard=guard)

        page = fetch(cursor)
        if id is not None and page.total == 0 and self._store.read(rtype, id) is None:
            raise NotFound(f"{rtype}/{id} is not known")
        if guard is None or (rtype is not None and not access.confined(interaction, rtype)):
            trail.touched(page.items)
            return page         # nothing can be hidden: the store's page, total and cursor stand
        admitted = page.total
        items, next_cursor, end = self._visible_page(interaction, rtype, page, cursor, limit, fetch)
        if end and cursor is None and limit > 0:
            total = len(items)
        elif admitted is not None and admitted <= max_total:
            everything = self._store.history(rtype, id, since=since, limit=max(admitted, 1), guard=guard)
            total = len(access.versions(interaction, rtype, everything.items, self.base))
        else:
            total = None
        trail.touched(items)
        return Page(items, next_cursor, total)

    def _visible_page(self, interaction, rtype, page: Page, cursor, count: int, fetch):
        """Up to `count` visible versions from whole store pages, starting at `page` (read at `cursor`):
        (items, the cursor of the next page or None, whether the end of the history was reached)."""
        items: list = []
        while True:
            shown = self.access.versions(interaction, rtype, page.items, self.base)
            if shown and len(items) + len(shown) > count:       # this store page starts the next page
                return items, cursor, False
            items += shown
            if page.next_cursor is None:                        # the end: nothing visible lies beyond
                return items, None, True
            cursor = page.next_cursor
            page = fetch(cursor)

    def _visible_search(self, rtype, query, limit, guard):
        return self._store.search(rtype, query, limit=limit, total="none", guard=guard).items

    # -- the unit of work ------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, provenance: dict | None = None):
        """One unit of work (one store transaction, the server's Provenance of what it writes recorded
        in it); yields a GuardedTransaction. provenance: the checked X-Provenance header, if any."""
        with self._unit(provenance) as tx:
            yield GuardedTransaction(tx, self.access, self.base)


class GuardedTransaction:
    """A write transaction as the request may use it: reads and matches are judged against the open
    transaction's state; writes are common.store_new_version(tx, ...) and common.store_delete(ctx, tx,
    ...), admitted by the writer's rights (Prepared.access, Access.admit_write)."""

    def __init__(self, tx: Transaction, access: Access, base: str):
        self.raw = tx         # for the write path alone (interactions/common.py)
        self.access = access
        self.base = base

    def read(self, rtype: str, id: str, interaction: str | None) -> Version | None:
        """The current version (None if never stored), after the same check as Repository.read for
        this interaction. interaction None: rtype/id was just matched through this request's guard in
        this transaction (a conditional's match), so it is read as it is."""
        if interaction is not None:
            self.access.check_visible(self._visible_search, interaction, rtype, id)
        return self.raw.read(rtype, id)

    def matches(self, rtype: str, query, limit: int, interaction: str) -> list[Version]:
        found = self.raw.search(rtype, query, limit, criteria_guard(self.access, rtype, interaction))
        trail.touched(found)
        return found

    def resolve(self, rtype: str, query, limit: int = 2) -> list[Version]:
        return self.raw.search(rtype, query, limit, self.access.guard("search-type"))

    def claim(self, kind: str, key: str, owner: str) -> str:
        """Bind a unique key to an owner in this transaction (Transaction.claim). A claim is a store
        record, not a resource: no access applies; what is written under it goes through the write path."""
        return self.raw.claim(kind, key, owner)

    def _visible_search(self, rtype, query, limit, guard):
        return self.raw.search(rtype, query, limit, guard)


def criteria_guard(access: Access, type: str, interaction: str):
    """The guard of a conditional interaction's search. Running criteria is a search, so it needs search
    rights as well as the interaction's own (a create- or write-only grant must not probe what exists);
    If-None-Exist also answers with the match, so it needs read rights too. Only resources inside
    both grants can match."""
    access.allow(interaction, type)
    access.allow("search-type", type)
    if interaction == "create":
        access.allow("read", type)
    own, search = access.guard(interaction), access.guard("search-type")
    if own is None:
        return search
    if search is None:
        return own
    return lambda rtype: intersect(own(rtype), search(rtype))
