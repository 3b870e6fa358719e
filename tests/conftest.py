"""Shared test set-up. Being here puts tests/ on sys.path, so tests in any folder
import the helpers beside it (``tools``, ``live_venue``)."""
