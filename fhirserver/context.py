"""What every interaction needs: the settings and the store."""
from __future__ import annotations

from dataclasses import dataclass

from .config import Settings
from .storage.base import Store


@dataclass
class ServerContext:
    settings: Settings
    store: Store

    @property
    def base(self) -> str:
        """The server's base URL: references under it are local."""
        return self.settings.base_url
