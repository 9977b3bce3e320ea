// SPDX-License-Identifier: MIT
// GENERATED from ledger_node/eip712_types.json by ledger_node.typed_data — do not edit.
pragma solidity ^0.8.24;

/// @title TypedData
/// @notice EIP-712 names and type hashes shared by GridMart contracts, Python and the browser.
library TypedData {
    string internal constant NAME = "GridMart";
    string internal constant VERSION = "1";
    bytes32 internal constant LISTING_TYPEHASH =
        keccak256("Listing(uint8 kind,bytes cid,bytes32 sha256,bytes32 metadataHash,uint256 previous,uint256 nonce,uint256 deadline)");
    bytes32 internal constant REDEEM_TYPEHASH =
        keccak256("Redeem(uint256 licenceId,uint256 nonce,uint256 deadline,bytes32 purpose)");
}
