// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// Stand-in for Multicall3's tryAggregate, which the official x402 facilitator calls at
/// 0xcA11bde05977b3631167028862bE2a173976CA11 to diagnose failed payments. Without it every
/// failure reason collapses to a generic simulation failure.
contract Multicall3 {
    struct Call {
        address target;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    function tryAggregate(bool requireSuccess, Call[] calldata calls) external payable returns (Result[] memory results) {
        results = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; i++) {
            (bool success, bytes memory returnData) = calls[i].target.call(calls[i].callData);
            if (requireSuccess) require(success, "Multicall3: call failed");
            results[i] = Result(success, returnData);
        }
    }
}
