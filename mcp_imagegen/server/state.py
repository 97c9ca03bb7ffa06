"""What the server's lifespan owns and every tool and resource handler shares."""

from __future__ import annotations

from dataclasses import dataclass, field

from mcp_imagegen.config import Settings
from mcp_imagegen.providers.registry import ProviderRegistry
from mcp_imagegen.server.inputs import InputResolver
from mcp_imagegen.server.jobs.core import JobManager
from mcp_imagegen.server.limits import RateLimit
from mcp_imagegen.server.links import DownloadLinks
from mcp_imagegen.server.model_knowledge import ModelKnowledge
from mcp_imagegen.store.base import Store
from mcp_imagegen.usage.ledger import Ledger
from mcp_imagegen.usage.prices import PriceTable


@dataclass(frozen=True)
class AppState:
    settings: Settings
    store: Store
    providers: ProviderRegistry
    inputs: InputResolver
    jobs: JobManager
    rate_limiter: RateLimit
    prices: PriceTable
    ledger: Ledger
    links: DownloadLinks | None = None
    """Signed full-size download links in results, when IMAGEGEN_PUBLIC_URL is set."""
    models: ModelKnowledge = field(default_factory=ModelKnowledge)
    """What the server knows of the providers' models (shipped data and the store's overlay):
    their lifecycle judges every call."""
