"""The schema's migrations (Alembic), shipped inside the package: `hospital-api migrate`
works from a plain wheel install, with no source tree beside it."""

from pathlib import Path

from alembic.config import Config

SCRIPTS = Path(__file__).resolve().parent


def alembic_config(database_url: str, *, configure_logger: bool = True) -> Config:
    """Alembic's configuration for `database_url`, without an alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = configure_logger
    return config
