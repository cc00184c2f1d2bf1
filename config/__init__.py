"""Stack settings: `settings` is pure and typed; `loader` reads them from Pulumi config."""

from .settings import PROJECT, SettingsError, StackSettings, parse_settings

__all__ = ["PROJECT", "SettingsError", "StackSettings", "parse_settings"]
