// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {MemberRegistry, MemberRoles} from "./MemberRegistry.sol";
import {TypedData} from "./TypedData.sol";

/**
 * @title ProductRegistry
 * @notice Certificates of GridMart products: who published which artifact (by CID and
 * sha-256), its metadata hash, its version chain and its shelf status. Each certificate
 * carries the publisher's EIP-712 signature, so anyone may submit it and anyone can
 * re-verify it later from the `CertificateRegistered` event.
 * @dev A product is the chain of its versions; its id is the id of its first certificate.
 * Storage keeps what on-chain rules need (publisher, version chain, status) and the
 * artifact's sha-256; the signed fields in full (CID, metadata hash, signature) live in
 * the event, which is as immutable as storage and far cheaper (gas is a product feature).
 */
contract ProductRegistry is AccessControl, EIP712, Nonces {
    /// @notice Approves and withdraws listings.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    enum Kind {
        Data,
        Tool,
        Application
    }

    enum Status {
        None,
        Pending,
        OnShelf,
        OffShelf
    }

    /// @notice What the publisher signs (EIP-712 type `Listing`).
    struct Listing {
        Kind kind;
        bytes cid;
        bytes32 sha256;
        bytes32 metadataHash;
        uint256 previous;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice A stored certificate: one header slot and the artifact's sha-256. The full
    /// CID, metadata hash and signature are in the `CertificateRegistered` event.
    struct Certificate {
        address publisher;
        uint32 productId;
        uint32 previous;
        uint16 version;
        Kind kind;
        Status status;
        bytes32 sha256;
    }

    MemberRegistry public immutable members;
    uint32 public certificateCount;
    mapping(uint256 id => Certificate) private _certificates;
    /// @dev latest version of a product; 0 while the product has a single version.
    mapping(uint256 productId => uint32) private _latest;

    event CertificateRegistered(
        uint256 indexed id,
        uint256 indexed productId,
        address indexed publisher,
        uint16 version,
        Listing listing,
        bytes signature
    );
    event StatusChanged(uint256 indexed id, Status status, address indexed by);

    error ExpiredSignature(uint256 deadline);
    error InvalidSignature(address publisher);
    error NotPublisher(address account);
    error NotProductPublisher(uint256 previous, address account);
    error NotLatestVersion(uint256 previous, uint256 latest);
    error UnknownCertificate(uint256 id);
    error InvalidTransition(uint256 id, Status from, Status to);
    error EmptyContentId();
    error Unauthorized(address account);

    constructor(address admin, MemberRegistry members_) EIP712(TypedData.NAME, TypedData.VERSION) {
        members = members_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, admin);
    }

    /**
     * @notice Register a product version signed by `publisher`. Anyone may submit it.
     * @param listing the signed fields (kind, CID, sha-256, metadata hash, previous, nonce, deadline)
     * @param publisher the signer: an active member with the publisher role (EOA or ERC-1271 wallet)
     * @param signature the publisher's EIP-712 signature over `listing`
     * @return id the new certificate id (also the product id for a first version)
     */
    function register(Listing calldata listing, address publisher, bytes calldata signature)
        external
        returns (uint256 id)
    {
        if (block.timestamp > listing.deadline) revert ExpiredSignature(listing.deadline);
        if (listing.cid.length == 0) revert EmptyContentId();
        if (!members.isActiveWithRole(publisher, MemberRoles.PUBLISHER)) revert NotPublisher(publisher);
        _useCheckedNonce(publisher, listing.nonce);
        bytes32 digest = _hashTypedDataV4(
            keccak256(
                abi.encode(
                    TypedData.LISTING_TYPEHASH,
                    listing.kind,
                    keccak256(listing.cid),
                    listing.sha256,
                    listing.metadataHash,
                    listing.previous,
                    listing.nonce,
                    listing.deadline
                )
            )
        );
        if (!SignatureChecker.isValidSignatureNow(publisher, digest, signature)) revert InvalidSignature(publisher);

        id = ++certificateCount;
        uint32 productId = uint32(id);
        uint16 version = 1;
        if (listing.previous != 0) {
            Certificate storage prev = _certificates[listing.previous];
            if (prev.status == Status.None) revert UnknownCertificate(listing.previous);
            if (prev.publisher != publisher) revert NotProductPublisher(listing.previous, publisher);
            uint256 latest = latestVersion(prev.productId);
            if (latest != listing.previous) revert NotLatestVersion(listing.previous, latest);
            productId = prev.productId;
            version = prev.version + 1;
            _latest[productId] = uint32(id);
        }
        _certificates[id] = Certificate({
            publisher: publisher,
            productId: productId,
            previous: uint32(listing.previous),
            version: version,
            kind: listing.kind,
            status: Status.Pending,
            sha256: listing.sha256
        });
        emit CertificateRegistered(id, productId, publisher, version, listing, signature);
    }

    /// @notice Put a pending (or withdrawn) certificate on the shelf.
    function approve(uint256 id) external onlyRole(OPERATOR_ROLE) {
        _transition(id, Status.OnShelf);
    }

    /// @notice Take a certificate off the shelf (operator, or its publisher). Sold licences stay valid.
    function withdraw(uint256 id) external {
        Certificate storage c = _existing(id);
        if (msg.sender != c.publisher && !hasRole(OPERATOR_ROLE, msg.sender)) revert Unauthorized(msg.sender);
        _transition(id, Status.OffShelf);
    }

    /// @notice The certificate `id` (reverts if unknown).
    function certificate(uint256 id) external view returns (Certificate memory) {
        return _existing(id);
    }

    /// @notice Id of the newest version of `productId`.
    function latestVersion(uint256 productId) public view returns (uint256) {
        uint256 latest = _latest[productId];
        return latest == 0 ? productId : latest;
    }

    /// @notice Certificate ids of every version of `productId`, oldest first.
    function history(uint256 productId) external view returns (uint256[] memory ids) {
        uint256 id = latestVersion(productId);
        ids = new uint256[](_existing(id).version);
        for (uint256 i = ids.length; i > 0; --i) {
            ids[i - 1] = id;
            id = _certificates[id].previous;
        }
    }

    /// @notice What a sale needs: the publisher, and whether the newest version is on the shelf.
    function saleInfo(uint256 productId) external view returns (address publisher, bool onShelf) {
        Certificate storage c = _certificates[latestVersion(productId)];
        return (c.publisher, c.status == Status.OnShelf && c.productId == productId);
    }

    /// @notice The EIP-712 domain separator for this chain and contract.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function _transition(uint256 id, Status to) private {
        Certificate storage c = _existing(id);
        Status from = c.status;
        bool allowed = to == Status.OnShelf ? from != Status.OnShelf : from != Status.OffShelf;
        if (!allowed) revert InvalidTransition(id, from, to);
        c.status = to;
        emit StatusChanged(id, to, msg.sender);
    }

    function _existing(uint256 id) private view returns (Certificate storage c) {
        c = _certificates[id];
        if (c.status == Status.None) revert UnknownCertificate(id);
    }
}
