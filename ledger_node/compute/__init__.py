"""The compute layer: product bundles, compute nodes and their jobs (docs/compute.md)."""
