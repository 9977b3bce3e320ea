// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/**
 * @title GridMartTimelock
 * @notice Holds DEFAULT_ADMIN_ROLE of every GridMart contract: role grants and revocations, the
 * fee recipient. An admin action runs only after `getMinDelay()` seconds in the open, scheduled
 * by the ConsortiumCouncil (its only proposer and canceller); anyone may execute it when ready.
 * @dev OpenZeppelin's TimelockController unchanged; this contract only gives it a name under
 * contracts/ so GridMart compiles and deploys it like its other contracts. It administers itself
 * (a delay change is itself a timelocked operation); the deployer's temporary admin role, used to
 * wire the council in, is renounced at deployment.
 */
contract GridMartTimelock is TimelockController {
    /**
     * @param minDelay seconds between scheduling and execution
     * @param proposers accounts that may schedule and cancel (the council)
     * @param executors accounts that may execute; [address(0)] lets anyone execute
     * @param admin optional set-up admin, renounced once the council is wired; address(0) for none
     */
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
