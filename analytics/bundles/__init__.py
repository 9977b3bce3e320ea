"""GridMart's built-in analytics products as compute bundles (docs/compute.md, docs/analytics.md).

    from analytics.bundles import build_product_bundle, build_training_bundle
    archive = build_product_bundle("theft-detection", "models/analytics")   # bytes, deterministic
    training = build_training_bundle()                                      # compute-to-data
"""
from analytics.bundles.build import (
                                     build_product_bundle,
                                     build_training_bundle,
                                     write_product_folder,
                                     write_training_folder,
)

__all__ = ["build_product_bundle", "build_training_bundle", "write_product_folder", "write_training_folder"]
