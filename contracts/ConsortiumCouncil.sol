// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/**
 * @title ConsortiumCouncil
 * @notice M-of-N approval of GridMart's admin actions by consortium members. A member proposes a
 * call (target, value, data, salt); once `threshold` distinct members approved it, the council
 * schedules it on the timelock, which runs it after its minimum delay; anyone may execute it then.
 * Cancelling a proposal (pending or scheduled) takes the same threshold.
 * @dev The council is the timelock's only proposer and canceller. A proposal's id is the
 * timelock's operation id (no predecessor), so both contracts name an operation alike.
 * Approvals are counted over the current members, so a removed member's approval no longer
 * counts. Membership and threshold change only through the timelock (a council proposal whose
 * target is this contract).
 */
contract ConsortiumCouncil {
    enum ProposalState {
        None,
        Pending, // collecting approvals
        Scheduled, // on the timelock (see `state` for ready / executed)
        Cancelled
    }

    /// @notice What `state` reports: the stored state, refined by the timelock's view of it.
    enum OperationStatus {
        None,
        Pending,
        Waiting, // scheduled, delay not over
        Ready,
        Executed,
        Cancelled
    }

    struct Proposal {
        address target;
        ProposalState state;
        uint256 value;
        bytes32 salt;
        bytes data;
    }

    /// @notice The timelock that holds the admin roles and runs what the council scheduled.
    TimelockController public immutable timelock;
    /// @notice Approvals needed to schedule or cancel a proposal.
    uint256 public threshold;

    address[] private _members;
    mapping(address account => bool) private _isMember;
    mapping(bytes32 id => Proposal) private _proposals;
    mapping(bytes32 id => mapping(address member => bool)) private _approved;
    mapping(bytes32 id => mapping(address member => bool)) private _cancelVoted;

    /// @notice `proposer` proposed `id` (its approval is counted).
    event Proposed(bytes32 indexed id, address indexed proposer, address target, uint256 value, bytes data, bytes32 salt);
    event Approved(bytes32 indexed id, address indexed member);
    /// @notice `id` reached the threshold and was scheduled; executable from `readyAt`.
    event Scheduled(bytes32 indexed id, uint256 readyAt);
    event CancelVoted(bytes32 indexed id, address indexed member);
    event Cancelled(bytes32 indexed id);
    event MemberAdded(address indexed member);
    event MemberRemoved(address indexed member);
    event ThresholdChanged(uint256 threshold);

    error NotCouncilMember(address account);
    error OnlyTimelock(address caller);
    error InvalidThreshold(uint256 threshold, uint256 members);
    error InvalidMember(address account);
    error ProposalExists(bytes32 id);
    error UnknownProposal(bytes32 id);
    error NotPending(bytes32 id, ProposalState state);
    error NotScheduled(bytes32 id, ProposalState state);
    error AlreadyApproved(bytes32 id, address member);
    error AlreadyVotedCancel(bytes32 id, address member);
    error AlreadyCancelled(bytes32 id);
    error AlreadyExecuted(bytes32 id);

    modifier onlyMember() {
        if (!_isMember[msg.sender]) revert NotCouncilMember(msg.sender);
        _;
    }

    modifier onlyTimelock() {
        if (msg.sender != address(timelock)) revert OnlyTimelock(msg.sender);
        _;
    }

    /**
     * @param timelock_ the timelock this council proposes to (it must grant the council its
     * PROPOSER_ROLE and CANCELLER_ROLE)
     * @param members_ the consortium members' accounts, distinct and non-zero
     * @param threshold_ approvals needed, 1..members_.length
     */
    constructor(TimelockController timelock_, address[] memory members_, uint256 threshold_) {
        timelock = timelock_;
        for (uint256 i; i < members_.length; ++i) {
            _addMember(members_[i]);
        }
        _setThreshold(threshold_);
    }

    // ------------------------------------------------------------- proposals

    /**
     * @notice Propose the call `target.call{value: value}(data)`, counting your approval.
     * Scheduled at once if that reaches the threshold.
     * @param salt distinguishes otherwise identical proposals (e.g. a repeat after a cancel)
     * @return id the proposal's (and the timelock operation's) id
     */
    function propose(address target, uint256 value, bytes calldata data, bytes32 salt)
        external
        onlyMember
        returns (bytes32 id)
    {
        id = timelock.hashOperation(target, value, data, bytes32(0), salt);
        if (_proposals[id].state != ProposalState.None || timelock.isOperation(id)) revert ProposalExists(id);
        _proposals[id] = Proposal(target, ProposalState.Pending, value, salt, data);
        _approved[id][msg.sender] = true;
        emit Proposed(id, msg.sender, target, value, data, salt);
        _scheduleIfApproved(id);
    }

    /// @notice Approve pending proposal `id`; schedules it when this reaches the threshold.
    function approve(bytes32 id) external onlyMember {
        Proposal storage p = _existing(id);
        if (p.state != ProposalState.Pending) revert NotPending(id, p.state);
        if (_approved[id][msg.sender]) revert AlreadyApproved(id, msg.sender);
        _approved[id][msg.sender] = true;
        emit Approved(id, msg.sender);
        _scheduleIfApproved(id);
    }

    /**
     * @notice Vote to cancel proposal `id` (pending or scheduled, not executed); at the threshold
     * it is cancelled, on the timelock too.
     */
    function cancel(bytes32 id) external onlyMember {
        Proposal storage p = _existing(id);
        if (p.state == ProposalState.Cancelled) revert AlreadyCancelled(id);
        if (timelock.isOperationDone(id)) revert AlreadyExecuted(id);
        if (_cancelVoted[id][msg.sender]) revert AlreadyVotedCancel(id, msg.sender);
        _cancelVoted[id][msg.sender] = true;
        emit CancelVoted(id, msg.sender);
        if (_count(_cancelVoted[id]) < threshold) return;
        bool scheduled = p.state == ProposalState.Scheduled;
        p.state = ProposalState.Cancelled;
        emit Cancelled(id);
        if (scheduled) timelock.cancel(id);
    }

    /**
     * @notice Execute scheduled proposal `id` through the timelock once its delay is over.
     * Anyone may call it (the timelock's executor role is open); `msg.value` is forwarded.
     */
    function execute(bytes32 id) external payable {
        Proposal storage p = _existing(id);
        if (p.state != ProposalState.Scheduled) revert NotScheduled(id, p.state);
        timelock.execute{value: msg.value}(p.target, p.value, p.data, bytes32(0), p.salt);
    }

    // ------------------------------------------------------------ governance

    /// @notice Add a council member (only through the timelock).
    function addMember(address account) external onlyTimelock {
        _addMember(account);
    }

    /// @notice Remove a council member (only through the timelock); the threshold must still be reachable.
    function removeMember(address account) external onlyTimelock {
        if (!_isMember[account]) revert NotCouncilMember(account);
        _isMember[account] = false;
        uint256 n = _members.length;
        for (uint256 i; i < n; ++i) {
            if (_members[i] == account) {
                _members[i] = _members[n - 1];
                _members.pop();
                break;
            }
        }
        if (threshold > _members.length) revert InvalidThreshold(threshold, _members.length);
        emit MemberRemoved(account);
    }

    /// @notice Set the approvals needed (only through the timelock).
    function setThreshold(uint256 threshold_) external onlyTimelock {
        _setThreshold(threshold_);
    }

    // ----------------------------------------------------------------- views

    /// @notice The council's members.
    function members() external view returns (address[] memory) {
        return _members;
    }

    /// @notice Whether `account` is a council member.
    function isMember(address account) external view returns (bool) {
        return _isMember[account];
    }

    /// @notice Proposal `id`: its call, stored state and current approval count.
    function proposal(bytes32 id) external view returns (Proposal memory p, uint256 approvals) {
        p = _proposals[id];
        approvals = _count(_approved[id]);
    }

    /// @notice Whether `member` approved proposal `id`.
    function hasApproved(bytes32 id, address member) external view returns (bool) {
        return _approved[id][member];
    }

    /// @notice Where proposal `id` stands, including the timelock's view (waiting, ready, executed).
    function state(bytes32 id) external view returns (OperationStatus) {
        ProposalState s = _proposals[id].state;
        if (s == ProposalState.None) return OperationStatus.None;
        if (s == ProposalState.Pending) return OperationStatus.Pending;
        if (s == ProposalState.Cancelled) return OperationStatus.Cancelled;
        if (timelock.isOperationDone(id)) return OperationStatus.Executed;
        return timelock.isOperationReady(id) ? OperationStatus.Ready : OperationStatus.Waiting;
    }

    // -------------------------------------------------------------- internal

    function _scheduleIfApproved(bytes32 id) private {
        if (_count(_approved[id]) < threshold) return;
        Proposal storage p = _proposals[id];
        p.state = ProposalState.Scheduled;
        uint256 delay = timelock.getMinDelay();
        emit Scheduled(id, block.timestamp + delay);
        timelock.schedule(p.target, p.value, p.data, bytes32(0), p.salt, delay);
    }

    function _count(mapping(address => bool) storage votes) private view returns (uint256 n) {
        for (uint256 i; i < _members.length; ++i) {
            if (votes[_members[i]]) ++n;
        }
    }

    function _addMember(address account) private {
        if (account == address(0) || _isMember[account]) revert InvalidMember(account);
        _isMember[account] = true;
        _members.push(account);
        emit MemberAdded(account);
    }

    function _setThreshold(uint256 threshold_) private {
        if (threshold_ == 0 || threshold_ > _members.length) revert InvalidThreshold(threshold_, _members.length);
        threshold = threshold_;
        emit ThresholdChanged(threshold_);
    }

    function _existing(bytes32 id) private view returns (Proposal storage p) {
        p = _proposals[id];
        if (p.state == ProposalState.None) revert UnknownProposal(id);
    }
}
