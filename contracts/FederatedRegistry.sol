// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MemberRegistry, MemberRoles} from "./MemberRegistry.sol";
import {Points} from "./Points.sol";
import {ProductRegistry} from "./ProductRegistry.sol";

/**
 * @title FederatedRegistry
 * @notice Federated-learning tasks: who trained which model, round by round, and each
 * partner's contribution share (basis points summing to 10,000). The owner escrows a
 * points reward pool, paid out pro rata to each partner's shares summed over all rounds.
 * @dev Payout: partner gets floor(pool * partnerBps / totalBps); the rounding remainder
 * goes back to the task owner, so no point is created or lost.
 */
contract FederatedRegistry is AccessControl {
    /// @notice Records rounds (the FL coordinator service).
    bytes32 public constant COORDINATOR_ROLE = keccak256("COORDINATOR_ROLE");
    uint16 public constant TOTAL_BPS = 10_000;

    enum TaskStatus {
        None,
        Open,
        Finalized
    }

    struct Task {
        address owner;
        uint32 productId;
        uint16 rounds;
        TaskStatus status;
        uint32 finalCertificate;
        uint128 rewardPool;
        uint128 totalBps; // sum of all recorded shares
        bytes32 specHash; // sha-256 of the task certificate (initial model, HE context, round rules)
    }

    MemberRegistry public immutable members;
    ProductRegistry public immutable products;
    Points public immutable points;

    uint256 public taskCount;
    mapping(uint256 taskId => Task) private _tasks;
    mapping(uint256 taskId => address[]) private _partners;
    mapping(uint256 taskId => mapping(address partner => uint256 bps)) private _partnerBps; // bps + 1 once joined
    mapping(uint256 taskId => mapping(uint256 round => bytes32 cidHash)) private _roundModel;

    event TaskOpened(
        uint256 indexed taskId, uint256 indexed productId, address indexed owner, uint256 rewardPool, bytes32 specHash, bytes specCid
    );
    event PartnerJoined(uint256 indexed taskId, address indexed partner);
    event RoundRecorded(
        uint256 indexed taskId, uint256 indexed round, bytes modelCid, address[] partners, uint64[] sampleCounts, uint16[] sharesBps
    );
    event TaskFunded(uint256 indexed taskId, uint256 amount);
    event TaskFinalized(uint256 indexed taskId, uint256 indexed certificateId);
    event RewardPaid(uint256 indexed taskId, address indexed partner, uint256 amount);

    error NotToolPublisher(uint256 productId, address account);
    error NotActiveMember(address account);
    error UnknownTask(uint256 taskId);
    error TaskClosed(uint256 taskId);
    error AlreadyJoined(uint256 taskId, address partner);
    error NotPartner(uint256 taskId, address partner);
    error DuplicatePartner(uint256 taskId, address partner);
    error WrongRound(uint256 taskId, uint256 expected, uint256 got);
    error LengthMismatch();
    error SharesDoNotSum(uint256 total);
    error NoRounds(uint256 taskId);
    error WrongCertificate(uint256 taskId, uint256 certificateId);
    error Unauthorized(address account);

    constructor(address admin, MemberRegistry members_, ProductRegistry products_, Points points_) {
        members = members_;
        products = products_;
        points = points_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(COORDINATOR_ROLE, admin);
    }

    /**
     * @notice Open a task to train a new version of your tool product, escrowing `rewardPool` points.
     * @param specHash sha-256 of the task certificate: the document naming the initial model and the
     * public HE context by CID and sha-256, and the round rules
     * @param specCid CID of that document in the content store (binary form; emitted, not stored)
     */
    function openTask(uint256 productId, uint128 rewardPool, bytes32 specHash, bytes calldata specCid)
        external
        returns (uint256 taskId)
    {
        ProductRegistry.Certificate memory c = products.certificate(productId);
        if (c.publisher != msg.sender || c.kind != ProductRegistry.Kind.Tool) revert NotToolPublisher(productId, msg.sender);
        if (!members.isActiveWithRole(msg.sender, MemberRoles.PUBLISHER)) revert NotActiveMember(msg.sender);
        taskId = ++taskCount;
        _tasks[taskId] = Task(msg.sender, uint32(productId), 0, TaskStatus.Open, 0, rewardPool, 0, specHash);
        if (rewardPool != 0) points.move(msg.sender, address(this), rewardPool);
        emit TaskOpened(taskId, productId, msg.sender, rewardPool, specHash, specCid);
    }

    /**
     * @notice Open a task for `owner`, attested by the coordinator (the owner signed its request
     * to the coordinator off chain). `productId` is the owner's tool product the task trains a new
     * version of, or 0 to fix it at finalisation. The pool starts empty (see fundTask).
     */
    function openTaskFor(address owner, uint256 productId, bytes32 specHash, bytes calldata specCid)
        external
        onlyRole(COORDINATOR_ROLE)
        returns (uint256 taskId)
    {
        if (!members.isActiveWithRole(owner, MemberRoles.PUBLISHER)) revert NotActiveMember(owner);
        if (productId != 0) {
            ProductRegistry.Certificate memory c = products.certificate(productId);
            if (c.publisher != owner || c.kind != ProductRegistry.Kind.Tool) revert NotToolPublisher(productId, owner);
        }
        taskId = ++taskCount;
        _tasks[taskId] = Task(owner, uint32(productId), 0, TaskStatus.Open, 0, 0, 0, specHash);
        emit TaskOpened(taskId, productId, owner, 0, specHash, specCid);
    }

    /// @notice Add `amount` of your points to the reward pool of your open task.
    function fundTask(uint256 taskId, uint128 amount) external {
        Task storage t = _open(taskId);
        if (msg.sender != t.owner) revert Unauthorized(msg.sender);
        t.rewardPool += amount;
        points.move(msg.sender, address(this), amount);
        emit TaskFunded(taskId, amount);
    }

    /// @notice Join an open task as a training partner (any active member).
    function join(uint256 taskId) external {
        _join(taskId, msg.sender);
    }

    /// @notice Add `partner` to a task, attested by the coordinator (the partner signed its join request).
    function addPartner(uint256 taskId, address partner) external onlyRole(COORDINATOR_ROLE) {
        _join(taskId, partner);
    }

    /**
     * @notice Record round `round` (1, 2, ...): the aggregated model's CID and, per contributing
     * partner, its sample count and share in basis points (summing to 10,000). Each partner
     * is listed at most once per round.
     */
    function recordRound(
        uint256 taskId,
        uint256 round,
        bytes calldata modelCid,
        address[] calldata partners,
        uint64[] calldata sampleCounts,
        uint16[] calldata sharesBps
    ) external onlyRole(COORDINATOR_ROLE) {
        Task storage t = _open(taskId);
        if (round != uint256(t.rounds) + 1) revert WrongRound(taskId, uint256(t.rounds) + 1, round);
        uint256 n = partners.length;
        if (n == 0 || sampleCounts.length != n || sharesBps.length != n) revert LengthMismatch();
        _addShares(taskId, partners, sharesBps);
        t.rounds = uint16(round);
        t.totalBps += uint128(TOTAL_BPS);
        _roundModel[taskId][round] = keccak256(modelCid);
        emit RoundRecorded(taskId, round, modelCid, partners, sampleCounts, sharesBps);
    }

    /**
     * @notice Close the task with its final model, registered as certificate `certificateId`
     * (a version of the task's product), and pay the reward pool out pro rata.
     * @dev Callable by the task owner or the coordinator.
     */
    function finalize(uint256 taskId, uint256 certificateId) external {
        Task storage t = _open(taskId);
        if (msg.sender != t.owner && !hasRole(COORDINATOR_ROLE, msg.sender)) revert Unauthorized(msg.sender);
        if (t.rounds == 0) revert NoRounds(taskId);
        ProductRegistry.Certificate memory c = products.certificate(certificateId);
        bool fits = t.productId == 0
            ? c.publisher == t.owner && c.kind == ProductRegistry.Kind.Tool
            : c.productId == t.productId;
        if (!fits) revert WrongCertificate(taskId, certificateId);
        if (t.productId == 0) t.productId = c.productId;
        t.status = TaskStatus.Finalized;
        t.finalCertificate = uint32(certificateId);
        emit TaskFinalized(taskId, certificateId);

        uint256 pool = t.rewardPool;
        uint256 paid;
        address[] storage partners = _partners[taskId];
        for (uint256 i; i < partners.length; ++i) {
            uint256 amount = pool * (_partnerBps[taskId][partners[i]] - 1) / t.totalBps;
            if (amount != 0) {
                paid += amount;
                points.move(address(this), partners[i], amount);
                emit RewardPaid(taskId, partners[i], amount);
            }
        }
        if (pool > paid) points.move(address(this), t.owner, pool - paid);
    }

    /// @notice The task `taskId`.
    function task(uint256 taskId) external view returns (Task memory) {
        return _tasks[taskId];
    }

    /// @notice Partners of `taskId` and their shares summed over all rounds (basis points).
    function contributions(uint256 taskId) external view returns (address[] memory partners, uint256[] memory bps) {
        partners = _partners[taskId];
        bps = new uint256[](partners.length);
        for (uint256 i; i < partners.length; ++i) {
            bps[i] = _partnerBps[taskId][partners[i]] - 1;
        }
    }

    /// @notice keccak256 of the aggregated model CID recorded for `round`.
    function roundModel(uint256 taskId, uint256 round) external view returns (bytes32) {
        return _roundModel[taskId][round];
    }

    function _join(uint256 taskId, address partner) private {
        _open(taskId);
        if (!members.isActiveWithRole(partner, 0)) revert NotActiveMember(partner);
        if (_partnerBps[taskId][partner] != 0) revert AlreadyJoined(taskId, partner);
        _partnerBps[taskId][partner] = 1;
        _partners[taskId].push(partner);
        emit PartnerJoined(taskId, partner);
    }

    /// @dev Duplicates are caught with a transient (EIP-1153) mark per partner, cleared before
    /// returning: O(n) and no storage written. The mark's slot is the partner's address (this is
    /// the contract's only use of transient storage).
    function _addShares(uint256 taskId, address[] calldata partners, uint16[] calldata sharesBps) private {
        mapping(address => uint256) storage bpsOf = _partnerBps[taskId];
        uint256 total;
        for (uint256 i; i < partners.length; ++i) {
            address partner = partners[i];
            uint256 current = bpsOf[partner];
            if (current == 0) revert NotPartner(taskId, partner);
            if (_markOnce(partner)) revert DuplicatePartner(taskId, partner);
            bpsOf[partner] = current + sharesBps[i];
            total += sharesBps[i];
        }
        for (uint256 i; i < partners.length; ++i) {
            _clearMark(partners[i]);
        }
        if (total != TOTAL_BPS) revert SharesDoNotSum(total);
    }

    /// @dev Sets the transient mark of `partner`; true if it was already set.
    function _markOnce(address partner) private returns (bool seen) {
        assembly ("memory-safe") {
            seen := tload(partner)
            tstore(partner, 1)
        }
    }

    function _clearMark(address partner) private {
        assembly ("memory-safe") {
            tstore(partner, 0)
        }
    }

    function _open(uint256 taskId) private view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.status == TaskStatus.None) revert UnknownTask(taskId);
        if (t.status != TaskStatus.Open) revert TaskClosed(taskId);
    }
}
