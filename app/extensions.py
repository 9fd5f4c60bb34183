"""Extension singletons, bound to an app in the factory."""

from flask_caching import Cache
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

cache = Cache()
login_manager = LoginManager()
csrf = CSRFProtect()
