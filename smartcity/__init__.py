"""smartcity: privacy-first video analytics server for cities."""

__version__ = "0.1.0"
