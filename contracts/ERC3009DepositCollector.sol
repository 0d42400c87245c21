// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// x402 batch-settlement's ERC-3009 deposit collector for the local chain: the settlement
/// contract calls it with the collector data the facilitator builds (validAfter, validBefore,
/// salt, signature); it receives the buyer's `ReceiveWithAuthorization` to itself, with nonce
/// keccak256(abi.encode(channelId, salt)), and passes the tokens on to the settlement contract.
/// Our own contract at the official address, written from the facilitator's calls.
interface IERC3009 {
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;
    function transfer(address to, uint256 value) external returns (bool);
}

contract ERC3009DepositCollector {
    address public constant SETTLEMENT = 0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003;

    function collect(address payer, address token, uint256 amount, bytes32 channelId, bytes calldata data) external {
        require(msg.sender == SETTLEMENT, "only the settlement contract");
        (uint256 validAfter, uint256 validBefore, uint256 salt, bytes memory signature) =
            abi.decode(data, (uint256, uint256, uint256, bytes));
        require(signature.length == 65, "invalid signature");
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(signature, 32))
            s := mload(add(signature, 64))
            v := byte(0, mload(add(signature, 96)))
        }
        if (v < 27) v += 27;
        bytes32 nonce = keccak256(abi.encode(channelId, salt));
        IERC3009(token).receiveWithAuthorization(payer, address(this), amount, validAfter, validBefore, nonce, v, r, s);
        require(IERC3009(token).transfer(SETTLEMENT, amount), "transfer failed");
    }
}
