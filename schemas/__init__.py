"""pydantic v2 event models and the bytes <-> model codec."""
