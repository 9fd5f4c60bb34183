"""Extension singletons, bound to an app in the factory."""

from flask_caching import Cache

cache = Cache()
