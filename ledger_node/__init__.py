"""ledger_node: the only GridMart code that talks to the chain or to IPFS.

Compile and deploy contracts, typed contract clients, wallet signing
(EIP-712, SIWE), the content store and the audit read side.
"""
