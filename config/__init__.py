"""config: typed settings, read from the environment once (see README "Settings"), and
the process's runtime tuning. Nothing else reads environment variables.

Must not import any other package of the project (tests/test_layers.py).
"""

from config.settings import Settings, SettingsError, env_name, load_settings

__all__ = ["Settings", "SettingsError", "env_name", "load_settings"]
