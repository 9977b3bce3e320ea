// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {MemberRegistry, MemberRoles} from "./MemberRegistry.sol";
import {Points} from "./Points.sol";
import {ProductRegistry} from "./ProductRegistry.sol";
import {TypedData} from "./TypedData.sol";

/**
 * @title Licensing
 * @notice Price plans, purchases (94 % to the publisher, 6 % to the operator, settled in the
 * same transaction) and licences with verifiable, non-replayable redemption.
 * @dev Redemptions are relayed by the marketplace service (REDEEMER_ROLE): it keeps the one
 * record of spent vouchers, on and off chain, and writes its row before submitting, so a
 * voucher it already accepted off chain can never be spent again here.
 * One licence per (product, holder): its id is keccak256(productId, holder), so a
 * repeat purchase extends the expiry (time plans) or adds uses (per-use plan).
 * Fee rounding: fee = round-half-up(price * feeBps / 10000); the publisher gets price - fee.
 */
contract Licensing is AccessControl, EIP712 {
    /// @notice Revokes licences and sets the price bounds (the marketplace service).
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    /// @notice Submits holders' signed redemption vouchers (the marketplace service).
    bytes32 public constant REDEEMER_ROLE = keccak256("REDEEMER_ROLE");

    enum PlanKind {
        PerUse,
        Week,
        Month,
        Year
    }

    struct Plan {
        uint16 price; // points; 0 = not offered
        uint16 uses; // per-use plan only: uses bought per purchase
    }

    struct Licence {
        address holder;
        uint32 productId;
        uint40 expiresAt; // time plans; 0 = none
        uint24 usesLeft; // per-use plan
    }

    /// @notice EIP-712 type `Redeem`, signed by the licence holder.
    struct Redeem {
        uint256 licenceId;
        uint256 nonce;
        uint256 deadline;
        bytes32 purpose;
    }

    MemberRegistry public immutable members;
    ProductRegistry public immutable products;
    Points public immutable points;

    address public feeRecipient;
    uint16 public feeBps = 600;
    uint16 public minPrice = 10;
    uint16 public maxPrice = 50;

    mapping(uint256 productId => mapping(PlanKind => Plan)) private _plans;
    mapping(uint256 licenceId => Licence) private _licences;
    mapping(address holder => mapping(uint256 word => uint256 bits)) private _usedNonces;

    event PlanSet(uint256 indexed productId, PlanKind kind, uint16 price, uint16 uses);
    event LicencePurchased(
        uint256 indexed licenceId,
        uint256 indexed productId,
        address indexed holder,
        PlanKind kind,
        uint256 price,
        uint256 fee,
        uint40 expiresAt,
        uint24 usesLeft
    );
    event Redeemed(uint256 indexed licenceId, address indexed holder, uint256 nonce, bytes32 purpose, uint24 usesLeft);
    event LicenceRevoked(uint256 indexed licenceId, address indexed holder, string reason);
    event PriceBoundsSet(uint16 minPrice, uint16 maxPrice);
    event FeeRecipientSet(address feeRecipient);

    error NotSubscriber(address account);
    error NotProductPublisher(uint256 productId, address account);
    error PublisherNotActive(uint256 productId, address publisher);
    error OwnProduct(uint256 productId);
    error PriceOutOfRange(uint16 price, uint16 minPrice, uint16 maxPrice);
    error InvalidPlan(PlanKind kind, uint16 uses);
    error PlanNotOffered(uint256 productId, PlanKind kind);
    error NotOnShelf(uint256 productId);
    error UnknownLicence(uint256 licenceId);
    error ExpiredSignature(uint256 deadline);
    error InvalidSignature(address holder);
    error NonceAlreadyUsed(address holder, uint256 nonce);
    error NotAuthorized(uint256 licenceId);
    error InvalidBounds(uint16 minPrice, uint16 maxPrice);

    constructor(address admin, MemberRegistry members_, ProductRegistry products_, Points points_, address feeRecipient_)
        EIP712(TypedData.NAME, TypedData.VERSION)
    {
        members = members_;
        products = products_;
        points = points_;
        feeRecipient = feeRecipient_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, admin);
    }

    // ----------------------------------------------------------------- plans

    /**
     * @notice Offer (price > 0) or withdraw (price == 0) a plan for a product you published,
     * while you are an active member with the publisher role.
     * @param uses uses granted per purchase of the per-use plan (ignored otherwise; must be 0)
     */
    function setPlan(uint256 productId, PlanKind kind, uint16 price, uint16 uses) external {
        (address publisher,) = products.saleInfo(productId);
        if (publisher != msg.sender) revert NotProductPublisher(productId, msg.sender);
        if (!members.isActiveWithRole(msg.sender, MemberRoles.PUBLISHER)) revert PublisherNotActive(productId, msg.sender);
        if (price != 0 && (price < minPrice || price > maxPrice)) revert PriceOutOfRange(price, minPrice, maxPrice);
        if ((kind == PlanKind.PerUse) != (uses != 0)) revert InvalidPlan(kind, uses);
        _plans[productId][kind] = Plan(price, uses);
        emit PlanSet(productId, kind, price, uses);
    }

    /// @notice The plan `kind` of `productId` (price 0 = not offered).
    function planOf(uint256 productId, PlanKind kind) external view returns (Plan memory) {
        return _plans[productId][kind];
    }

    // -------------------------------------------------------------- purchase

    /// @notice The operator's share of `price`, rounded half up.
    function feeFor(uint256 price) public view returns (uint256) {
        return (price * feeBps + 5000) / 10000;
    }

    /**
     * @notice Buy plan `kind` of `productId` with your points. Pays the publisher and the
     * operator in this transaction and issues (or extends) your licence. Refused while the
     * publisher is not an active member with the publisher role (a suspended publisher is not
     * paid), and for a product you published yourself (no wash sales).
     * @return licenceId keccak256(productId, buyer)
     */
    function purchase(uint256 productId, PlanKind kind) external returns (uint256 licenceId) {
        if (!members.isActiveWithRole(msg.sender, MemberRoles.SUBSCRIBER)) revert NotSubscriber(msg.sender);
        (address publisher, bool onShelf) = products.saleInfo(productId);
        if (!onShelf) revert NotOnShelf(productId);
        if (publisher == msg.sender) revert OwnProduct(productId);
        if (!members.isActiveWithRole(publisher, MemberRoles.PUBLISHER)) revert PublisherNotActive(productId, publisher);
        Plan memory plan = _plans[productId][kind];
        if (plan.price == 0) revert PlanNotOffered(productId, kind);

        uint256 fee = feeFor(plan.price);
        points.settle(msg.sender, publisher, feeRecipient, plan.price, fee);

        licenceId = licenceIdOf(productId, msg.sender);
        Licence storage l = _licences[licenceId];
        if (l.holder == address(0)) {
            l.holder = msg.sender;
            l.productId = uint32(productId);
        }
        if (kind == PlanKind.PerUse) {
            l.usesLeft += plan.uses;
        } else {
            uint40 start = l.expiresAt > block.timestamp ? l.expiresAt : uint40(block.timestamp);
            l.expiresAt = start + _duration(kind);
        }
        emit LicencePurchased(licenceId, productId, msg.sender, kind, plan.price, fee, l.expiresAt, l.usesLeft);
    }

    // ------------------------------------------------------------ redemption

    /**
     * @notice Redeem a licence with the holder's signed voucher. Only the marketplace service
     * (REDEEMER_ROLE) submits vouchers: it records each spent voucher before submitting it, so
     * a voucher spent on its off-chain path cannot be spent again here.
     * A time-plan licence in force is not consumed; otherwise one use is spent.
     * Each voucher nonce is accepted once per holder, ever.
     */
    function redeem(Redeem calldata voucher, bytes calldata signature) external onlyRole(REDEEMER_ROLE) {
        Licence storage l = _licences[voucher.licenceId];
        address holder = l.holder;
        if (holder == address(0)) revert UnknownLicence(voucher.licenceId);
        if (block.timestamp > voucher.deadline) revert ExpiredSignature(voucher.deadline);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(TypedData.REDEEM_TYPEHASH, voucher.licenceId, voucher.nonce, voucher.deadline, voucher.purpose))
        );
        if (!SignatureChecker.isValidSignatureNow(holder, digest, signature)) revert InvalidSignature(holder);
        _useNonce(holder, voucher.nonce);
        if (!members.isActiveWithRole(holder, MemberRoles.SUBSCRIBER)) revert NotSubscriber(holder);
        if (l.expiresAt <= block.timestamp) {
            if (l.usesLeft == 0) revert NotAuthorized(voucher.licenceId);
            unchecked {
                --l.usesLeft;
            }
        }
        emit Redeemed(voucher.licenceId, holder, voucher.nonce, voucher.purpose, l.usesLeft);
    }

    /// @notice Whether `nonce` of `holder` was already redeemed.
    function nonceUsed(address holder, uint256 nonce) external view returns (bool) {
        return _usedNonces[holder][nonce >> 8] & (1 << (nonce & 0xff)) != 0;
    }

    /// @notice Whether `holder` may use `productId` now (time plan in force, or uses left).
    function isAuthorized(address holder, uint256 productId) external view returns (bool) {
        Licence storage l = _licences[licenceIdOf(productId, holder)];
        return l.holder != address(0) && (l.expiresAt > block.timestamp || l.usesLeft > 0);
    }

    /// @notice The licence `licenceId` (reverts if unknown).
    function licence(uint256 licenceId) external view returns (Licence memory) {
        Licence memory l = _licences[licenceId];
        if (l.holder == address(0)) revert UnknownLicence(licenceId);
        return l;
    }

    /// @notice Deterministic licence id of (`productId`, `holder`).
    function licenceIdOf(uint256 productId, address holder) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(productId, holder)));
    }

    // -------------------------------------------------------------- operator

    /// @notice End a licence now (e.g. its holder was suspended); sold points are not refunded.
    function revoke(uint256 licenceId, string calldata reason) external onlyRole(OPERATOR_ROLE) {
        Licence storage l = _licences[licenceId];
        if (l.holder == address(0)) revert UnknownLicence(licenceId);
        l.expiresAt = 0;
        l.usesLeft = 0;
        emit LicenceRevoked(licenceId, l.holder, reason);
    }

    /// @notice Set the allowed price range of plans (applies to plans set afterwards).
    function setPriceBounds(uint16 min, uint16 max) external onlyRole(OPERATOR_ROLE) {
        if (min == 0 || min > max) revert InvalidBounds(min, max);
        minPrice = min;
        maxPrice = max;
        emit PriceBoundsSet(min, max);
    }

    /// @notice Set the account that receives the operator's fee.
    function setFeeRecipient(address recipient) external onlyRole(DEFAULT_ADMIN_ROLE) {
        feeRecipient = recipient;
        emit FeeRecipientSet(recipient);
    }

    /// @notice The EIP-712 domain separator for this chain and contract.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function _useNonce(address holder, uint256 nonce) private {
        uint256 bit = 1 << (nonce & 0xff);
        uint256 word = _usedNonces[holder][nonce >> 8];
        if (word & bit != 0) revert NonceAlreadyUsed(holder, nonce);
        _usedNonces[holder][nonce >> 8] = word | bit;
    }

    function _duration(PlanKind kind) private pure returns (uint40) {
        if (kind == PlanKind.Week) return 7 days;
        if (kind == PlanKind.Month) return 30 days;
        return 365 days;
    }
}
