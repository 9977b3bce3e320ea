// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/**
 * @title Points
 * @notice GridMart's internal points ledger. Members receive exactly 500 points once, at
 * admission; afterwards points move only through GridMart's own contracts (purchases,
 * federated rewards). There is deliberately no member-to-member `transfer`.
 */
contract Points is AccessControl {
    /// @notice May grant the one-off admission points (the MemberRegistry).
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    /// @notice May move points between accounts (Licensing, FederatedRegistry).
    bytes32 public constant MOVER_ROLE = keccak256("MOVER_ROLE");

    /// @notice Points granted to every member unit at admission.
    uint256 public constant ADMISSION_GRANT = 500;

    mapping(address account => uint256) private _balances;
    mapping(address account => bool) private _admissionGranted;
    uint256 private _totalSupply;

    /// @notice Points moved from `from` to `to` (from == 0 for a grant).
    event Transfer(address indexed from, address indexed to, uint256 amount);

    error AdmissionAlreadyGranted(address account);
    error InsufficientPoints(address account, uint256 balance, uint256 needed);
    error ZeroAddress();

    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Balance of `account`.
    function balanceOf(address account) external view returns (uint256) {
        return _balances[account];
    }

    /// @notice All points ever granted (moves never change it).
    function totalSupply() external view returns (uint256) {
        return _totalSupply;
    }

    /// @notice Whether `account` already received its admission grant.
    function admissionGranted(address account) external view returns (bool) {
        return _admissionGranted[account];
    }

    /**
     * @notice Grant the 500 admission points to `account`. Reverts if it ever got them.
     * @dev Only REGISTRAR_ROLE (the MemberRegistry, on admission).
     */
    function grantAdmission(address account) external onlyRole(REGISTRAR_ROLE) {
        if (account == address(0)) revert ZeroAddress();
        if (_admissionGranted[account]) revert AdmissionAlreadyGranted(account);
        _admissionGranted[account] = true;
        _totalSupply += ADMISSION_GRANT;
        unchecked {
            _balances[account] += ADMISSION_GRANT;
        }
        emit Transfer(address(0), account, ADMISSION_GRANT);
    }

    /**
     * @notice Move `amount` points from `from` to `to`.
     * @dev Only MOVER_ROLE: GridMart contracts that implement a business rule.
     */
    function move(address from, address to, uint256 amount) external onlyRole(MOVER_ROLE) {
        _move(from, to, amount);
    }

    /**
     * @notice Settle a sale in one call: `from` pays `amount`; `fee` goes to `feeRecipient`,
     * the rest to `payee`. Nothing is created or lost.
     * @dev Only MOVER_ROLE. The caller computes `fee`; `fee > amount` reverts.
     */
    function settle(address from, address payee, address feeRecipient, uint256 amount, uint256 fee)
        external
        onlyRole(MOVER_ROLE)
    {
        uint256 net = amount - fee; // reverts (panic) if fee > amount
        _debit(from, amount);
        unchecked {
            _balances[payee] += net;
            _balances[feeRecipient] += fee;
            emit Transfer(from, payee, net);
            emit Transfer(from, feeRecipient, fee);
        }
    }

    function _move(address from, address to, uint256 amount) private {
        if (to == address(0)) revert ZeroAddress();
        _debit(from, amount);
        unchecked {
            _balances[to] += amount;
        }
        emit Transfer(from, to, amount);
    }

    function _debit(address from, uint256 amount) private {
        uint256 balance = _balances[from];
        if (balance < amount) revert InsufficientPoints(from, balance, amount);
        unchecked {
            _balances[from] = balance - amount;
        }
    }
}
