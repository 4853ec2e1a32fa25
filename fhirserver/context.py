"""What every interaction needs: the settings, the store and the request's access rights."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .config import Settings
from .search import identifier_forms
from .smart_auth.access import UNRESTRICTED, Access
from .storage.base import Store
from .uhid import number
from .uhid.identifier import pinned_system


@dataclass
class ServerContext:
    settings: Settings
    store: Store
    access: Access = field(default=UNRESTRICTED)    # the request's rights (smart_auth.access)
    uhid_system: str = ""        # the store's UHID system (uhid/identifier.py pinned_system), found once

    def __post_init__(self):
        if not self.uhid_system:
            self.uhid_system = pinned_system(self.store, self.settings)
            identifier_forms.register(self.uhid_system, number.canonical)

    def acting_as(self, access: Access) -> "ServerContext":
        """The same server, for one request with these rights."""
        return dataclasses.replace(self, access=access)

    def search_visible(self, rtype, query, limit, guard):
        """search(type, query, limit, guard) over committed data (for Access.visible)."""
        return self.store.search(rtype, query, limit=limit, total="none", guard=guard).items

    @property
    def base(self) -> str:
        """The server's base URL: references under it are local."""
        return self.settings.base_url
