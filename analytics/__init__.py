"""GridMart analytics products: seeded data generators, loaders and scikit-learn models.

This package imports nothing else of GridMart, so a subscriber can run a downloaded
product with only scikit-learn installed. Entry points: :mod:`analytics.registry`
(products the marketplace publishes and remote-runs) and :mod:`analytics.data`
(generators and loaders of the real formats).
"""
from analytics.errors import AnalyticsError, MalformedFileError

__all__ = ["AnalyticsError", "MalformedFileError"]
