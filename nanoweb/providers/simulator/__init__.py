"""The provider simulator (see server.py)."""
