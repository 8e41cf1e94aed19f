"""Carrier adapters behind one port (base.py), looked up by type name (registry.py)."""
