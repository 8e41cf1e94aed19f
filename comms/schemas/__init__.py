"""Marshmallow schemas of the HTTP contract: what comes in and what goes out, no database access."""
