"""Gateway configuration: settings read once from the environment."""

from config.settings import Backend, Settings, SettingsError

__all__ = ["Backend", "Settings", "SettingsError"]
