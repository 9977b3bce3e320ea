"""Seeded generators of realistic grid data in real formats, and loaders for those formats."""
