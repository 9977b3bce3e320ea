// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/**
 * @title UsageAnchor
 * @notice Batches of usage records (orders, redemptions, downloads, remote calls) anchored
 * as Merkle roots, so each record is provable without one transaction per record.
 * @dev Trees use OpenZeppelin's sorted-pair keccak256; a leaf is keccak256(keccak256(record)).
 */
contract UsageAnchor is AccessControl {
    /// @notice Anchors batches (the marketplace service).
    bytes32 public constant ANCHOR_ROLE = keccak256("ANCHOR_ROLE");

    struct Batch {
        bytes32 root;
        uint32 count;
        uint40 fromTime;
        uint40 toTime;
        uint40 anchoredAt;
    }

    uint256 public batchCount;
    mapping(uint256 batchId => Batch) private _batches;

    event BatchAnchored(uint256 indexed batchId, bytes32 indexed root, uint32 count, uint40 fromTime, uint40 toTime);

    error EmptyBatch();
    error InvalidWindow(uint40 fromTime, uint40 toTime);
    error UnknownBatch(uint256 batchId);

    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ANCHOR_ROLE, admin);
    }

    /**
     * @notice Anchor the Merkle root of `count` usage records made between `fromTime` and `toTime`.
     * @return batchId sequential id of the batch
     */
    function anchor(bytes32 root, uint32 count, uint40 fromTime, uint40 toTime)
        external
        onlyRole(ANCHOR_ROLE)
        returns (uint256 batchId)
    {
        if (count == 0 || root == bytes32(0)) revert EmptyBatch();
        if (fromTime > toTime) revert InvalidWindow(fromTime, toTime);
        batchId = ++batchCount;
        _batches[batchId] = Batch(root, count, fromTime, toTime, uint40(block.timestamp));
        emit BatchAnchored(batchId, root, count, fromTime, toTime);
    }

    /// @notice The batch `batchId`.
    function batch(uint256 batchId) external view returns (Batch memory b) {
        b = _batches[batchId];
        if (b.root == bytes32(0)) revert UnknownBatch(batchId);
    }

    /// @notice Whether `leaf` is in batch `batchId` by `proof`.
    function verify(uint256 batchId, bytes32 leaf, bytes32[] calldata proof) external view returns (bool) {
        bytes32 root = _batches[batchId].root;
        if (root == bytes32(0)) revert UnknownBatch(batchId);
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }
}
