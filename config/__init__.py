"""Typed settings, read from the environment once (see README "Settings")."""

from config.settings import Settings, SettingsError, env_name, load_settings

__all__ = ["Settings", "SettingsError", "env_name", "load_settings"]
