"""Heat-map tests (a package, so module names do not clash with other areas' tests)."""
