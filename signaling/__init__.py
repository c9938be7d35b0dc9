"""signaling: WHIP ingest and WHEP playback with a pass-through (never transcoding) video
relay, peer lifecycles, and one relay per show across processes (``placement.py``).

Who may publish or watch is asked of the app through ``access.ShowAccess``. Coded errors:
``errors.SignalingError`` with ``error_codes.py``. Details: signaling/README.md.

Must not import ``checkout``, ``live``, ``web`` or ``benches`` (tests/test_layers.py): it
knows nothing of products, orders or chat.
"""

from .access import ShowAccess, VideoHealth, VideoState
from .config import SignalingConfig
from .errors import SignalingError
from .service import SignalingService

__all__ = [
    "ShowAccess",
    "SignalingConfig",
    "SignalingError",
    "SignalingService",
    "VideoHealth",
    "VideoState",
]
