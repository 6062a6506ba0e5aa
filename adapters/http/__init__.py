"""The HTTP adapter: a FastAPI app over an Engine, with Open311 GeoReport v2.

Example::

    from adapters.http import ApiKey, create_app
    from engine import Engine

    engine = Engine("tickets.sqlite").start()
    app = create_app(engine, api_keys={"k-centre": ApiKey(actor="ops-1", role="centre")})
    # uvicorn.run(app)  — or `gridwhistle serve`
"""

from adapters.http.app import create_app
from adapters.http.auth import ApiKey, KeyNotValid, KeyRing, load_api_keys
from adapters.http.open311 import Open311Privacy

__all__ = ["ApiKey", "KeyNotValid", "KeyRing", "Open311Privacy", "create_app", "load_api_keys"]
