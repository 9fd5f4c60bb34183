"""Component ids, in one place so layouts and callbacks never disagree on a string."""

URL = "url"
THEME_SWITCH = "theme-switch"
THEME_STORE = "theme-store"
NAV_LINKS = "nav-links"

HOME_REFRESH = "home-refresh"
HOME_STATUS = "home-status"
HOME_DATABASE = "home-database"
HOME_FEEDS = "home-feeds"
HOME_WARNINGS = "home-warnings"
