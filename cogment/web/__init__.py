"""`cogment web`: humans in a browser. A bridge serving a page and relaying each browser tab,
over a WebSocket, to the orchestrator as one client (`pip install "cogment[web]"`).

```python
from cogment.web import WebBridge
with WebBridge(cog_settings, "127.0.0.1:9000", port=8080) as bridge:
    print("open", bridge.url)
```

The protocol's message types and error codes are in `cogment.web.protocol`; pages use the
JavaScript module the bridge serves at `/cogment.js`. aiohttp is imported only by this
subpackage (`import cogment` never imports it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cogment.errors import ConfigurationError

MISSING_EXTRA = 'cogment web needs aiohttp, an optional dependency: pip install "cogment[web]"'

if TYPE_CHECKING:
    from cogment.web.server import WebBridge

__all__ = ["MISSING_EXTRA", "WebBridge", "require_aiohttp"]


def require_aiohttp() -> None:
    """Raises ConfigurationError naming the extra when aiohttp is not installed."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        raise ConfigurationError(MISSING_EXTRA) from None


def __getattr__(name: str) -> Any:
    if name == "WebBridge":
        require_aiohttp()
        from cogment.web.server import WebBridge

        return WebBridge
    raise AttributeError(f"module 'cogment.web' has no attribute {name!r}")
