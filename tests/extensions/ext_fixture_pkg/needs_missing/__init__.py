"""An extension package whose optional dependency is not installed."""

import smartcity_test_no_such_dependency  # type: ignore[import-not-found]  # noqa: F401
