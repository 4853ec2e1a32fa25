"""What every interaction needs: the settings, the store and the request's access rights."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .config import Settings
from .search import identifier_forms
from .smart_auth.access import UNRESTRICTED, Access
from .storage.base import Store
from .uhid import number
from .uhid.identifier import uhid_system


@dataclass
class ServerContext:
    settings: Settings
    store: Store
    access: Access = field(default=UNRESTRICTED)    # the request's rights (smart_auth.access)

    def __post_init__(self):
        identifier_forms.register(uhid_system(self.settings), number.canonical)

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

    @property
    def uhid_system(self) -> str:
        return uhid_system(self.settings)
