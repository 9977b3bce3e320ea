// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Points} from "./Points.sol";

/// @title MemberRoles
/// @notice Role bits of a member unit; a unit may hold several.
library MemberRoles {
    uint8 internal constant PUBLISHER = 1;
    uint8 internal constant SUBSCRIBER = 2;
    uint8 internal constant AUDITOR = 4;
    uint8 internal constant ALL = 7;
}

/**
 * @title MemberRegistry
 * @notice Member units (provincial companies, institutes) admitted by the operator, with
 * their marketplace roles. Admission grants the 500 starting points, once.
 * @dev Roles are a bit set (MemberRoles) so a unit can hold several.
 */
contract MemberRegistry is AccessControl {
    /// @notice Admits, suspends and reinstates members; grants and revokes their roles.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    enum Status {
        None,
        Active,
        Suspended
    }

    struct Member {
        bytes32 identityHash; // sha-256 of the real-name identity document
        uint8 roles;
        Status status;
        uint40 admittedAt;
    }

    Points public immutable points;
    mapping(address wallet => Member) private _members;
    uint256 public memberCount;

    event MemberAdmitted(address indexed wallet, string name, bytes32 identityHash, uint8 roles);
    event RolesChanged(address indexed wallet, uint8 roles);
    event MemberSuspended(address indexed wallet, string reason);
    event MemberReinstated(address indexed wallet);

    error AlreadyMember(address wallet);
    error NotMember(address wallet);
    error InvalidRoles(uint8 roles);
    error InvalidStatus(address wallet, Status status);
    error ZeroAddress();

    constructor(address admin, Points points_) {
        points = points_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, admin);
    }

    /**
     * @notice Admit a member unit and grant it 500 points.
     * @param wallet the unit's wallet address
     * @param name the unit's display name (kept in the event only)
     * @param identityHash sha-256 of its identity document (real-name authentication)
     * @param roles bit set of MemberRoles.PUBLISHER | SUBSCRIBER | AUDITOR
     */
    function admit(address wallet, string calldata name, bytes32 identityHash, uint8 roles)
        external
        onlyRole(OPERATOR_ROLE)
    {
        if (wallet == address(0)) revert ZeroAddress();
        if (_members[wallet].status != Status.None) revert AlreadyMember(wallet);
        if (roles == 0 || roles & ~MemberRoles.ALL != 0) revert InvalidRoles(roles);
        _members[wallet] = Member(identityHash, roles, Status.Active, uint40(block.timestamp));
        unchecked {
            ++memberCount;
        }
        emit MemberAdmitted(wallet, name, identityHash, roles);
        points.grantAdmission(wallet);
    }

    /// @notice Replace a member's role set (at least one role).
    function setRoles(address wallet, uint8 roles) external onlyRole(OPERATOR_ROLE) {
        Member storage m = _existing(wallet);
        if (roles == 0 || roles & ~MemberRoles.ALL != 0) revert InvalidRoles(roles);
        m.roles = roles;
        emit RolesChanged(wallet, roles);
    }

    /// @notice Suspend an active member: it can no longer publish, buy, redeem or train.
    function suspend(address wallet, string calldata reason) external onlyRole(OPERATOR_ROLE) {
        Member storage m = _existing(wallet);
        if (m.status != Status.Active) revert InvalidStatus(wallet, m.status);
        m.status = Status.Suspended;
        emit MemberSuspended(wallet, reason);
    }

    /// @notice Reinstate a suspended member.
    function reinstate(address wallet) external onlyRole(OPERATOR_ROLE) {
        Member storage m = _existing(wallet);
        if (m.status != Status.Suspended) revert InvalidStatus(wallet, m.status);
        m.status = Status.Active;
        emit MemberReinstated(wallet);
    }

    /// @notice The stored record of `wallet` (status None if never admitted).
    function memberOf(address wallet) external view returns (Member memory) {
        return _members[wallet];
    }

    /// @notice True if `wallet` is an active member holding every role bit in `role`.
    function isActiveWithRole(address wallet, uint8 role) public view returns (bool) {
        Member storage m = _members[wallet];
        return m.status == Status.Active && m.roles & role == role;
    }

    function _existing(address wallet) private view returns (Member storage m) {
        m = _members[wallet];
        if (m.status == Status.None) revert NotMember(wallet);
    }
}
