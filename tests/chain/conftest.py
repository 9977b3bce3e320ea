"""Chain tests use the session Hardhat node and deployment from tests/conftest.py."""
