// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// x402's batch-settlement channel manager for the local chain, written from the interface the
/// x402 EVM package ships (batchSettlementABI) and the calls its facilitator makes: a buyer
/// deposits once into a channel (a collector pulls the tokens); the receiver's authorizer
/// claims the buyer's cumulative vouchers in batches and settles the claimed total to the
/// receiver; unclaimed balance is refunded with the authorizer's signature, or withdrawn by the
/// payer after the channel's withdraw delay. Installed at the official address with
/// anvil_setCode: it needs no constructor. Not x402's deployed contract: a green test on it
/// proves the SDK wiring, not that contract.
interface IERC20Min {
    function transfer(address to, uint256 value) external returns (bool);
    function balanceOf(address holder) external view returns (uint256);
}

interface IDepositCollector {
    function collect(address payer, address token, uint256 amount, bytes32 channelId, bytes calldata data) external;
}

contract BatchSettlement {
    struct ChannelConfig {
        address payer;
        address payerAuthorizer;
        address receiver;
        address receiverAuthorizer;
        address token;
        uint40 withdrawDelay;
        bytes32 salt;
    }

    struct Voucher {
        ChannelConfig channel;
        uint128 maxClaimableAmount;
    }

    struct VoucherClaim {
        Voucher voucher;
        bytes signature;
        uint128 totalClaimed;
    }

    struct Channel {
        uint128 balance;
        uint128 totalClaimed;
    }

    struct Withdrawal {
        uint128 amount;
        uint40 initiatedAt;
    }

    struct ReceiverTotals {
        uint128 totalClaimed;
        uint128 totalSettled;
    }

    /// The ERC-3009 deposit collector at its official address; the only one this contract trusts.
    address public constant ERC3009_COLLECTOR = 0x4020806089470a89826cB9fB1f4059150b550004;
    uint40 public constant MIN_WITHDRAW_DELAY = 900;
    uint40 public constant MAX_WITHDRAW_DELAY = 30 days;

    bytes32 public constant CHANNEL_CONFIG_TYPEHASH = keccak256(
        "ChannelConfig(address payer,address payerAuthorizer,address receiver,address receiverAuthorizer,address token,uint40 withdrawDelay,bytes32 salt)"
    );
    bytes32 private constant VOUCHER_TYPEHASH = keccak256("Voucher(bytes32 channelId,uint128 maxClaimableAmount)");
    bytes32 private constant REFUND_TYPEHASH = keccak256("Refund(bytes32 channelId,uint256 nonce,uint128 amount)");
    bytes32 private constant CLAIM_ENTRY_TYPEHASH =
        keccak256("ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)");
    bytes32 private constant CLAIM_BATCH_TYPEHASH = keccak256(
        "ClaimBatch(ClaimEntry[] claims)ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)"
    );
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    uint256 private constant HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    mapping(bytes32 => Channel) public channels;
    mapping(bytes32 => Withdrawal) public pendingWithdrawals;
    mapping(bytes32 => uint256) public refundNonce;
    mapping(address => mapping(address => ReceiverTotals)) public receivers;

    event Deposited(bytes32 indexed channelId, address indexed payer, uint128 amount);
    event Claimed(bytes32 indexed channelId, address indexed receiver, uint128 totalClaimed);
    event Settled(address indexed receiver, address indexed token, address indexed sender, uint128 amount);
    event Refunded(bytes32 indexed channelId, address indexed payer, uint128 amount);
    event WithdrawInitiated(bytes32 indexed channelId, uint128 amount);

    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256("x402 Batch Settlement"), keccak256("1"), block.chainid, address(this)
            )
        );
    }

    function getChannelId(ChannelConfig calldata config) public view returns (bytes32) {
        return _digest(keccak256(abi.encode(CHANNEL_CONFIG_TYPEHASH, config)));
    }

    function getVoucherDigest(bytes32 channelId, uint128 maxClaimableAmount) public view returns (bytes32) {
        return _digest(keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, maxClaimableAmount)));
    }

    function getRefundDigest(bytes32 channelId, uint256 nonce, uint128 amount) public view returns (bytes32) {
        return _digest(keccak256(abi.encode(REFUND_TYPEHASH, channelId, nonce, amount)));
    }

    function getClaimBatchDigest(VoucherClaim[] calldata voucherClaims) public view returns (bytes32) {
        bytes32[] memory entries = new bytes32[](voucherClaims.length);
        for (uint256 i = 0; i < voucherClaims.length; i++) {
            VoucherClaim calldata c = voucherClaims[i];
            entries[i] = keccak256(
                abi.encode(
                    CLAIM_ENTRY_TYPEHASH, getChannelId(c.voucher.channel), c.voucher.maxClaimableAmount, c.totalClaimed
                )
            );
        }
        return _digest(keccak256(abi.encode(CLAIM_BATCH_TYPEHASH, keccak256(abi.encodePacked(entries)))));
    }

    /// Adds `amount` to the channel of `config`, pulled from the payer by `collector`.
    function deposit(ChannelConfig calldata config, uint128 amount, address collector, bytes calldata collectorData)
        external
    {
        require(collector == ERC3009_COLLECTOR, "unknown collector");
        require(amount > 0, "zero deposit");
        require(
            config.withdrawDelay >= MIN_WITHDRAW_DELAY && config.withdrawDelay <= MAX_WITHDRAW_DELAY,
            "withdraw delay out of range"
        );
        require(config.payer != address(0) && config.receiver != address(0), "missing party");
        bytes32 channelId = getChannelId(config);
        uint256 before = IERC20Min(config.token).balanceOf(address(this));
        IDepositCollector(collector).collect(config.payer, config.token, amount, channelId, collectorData);
        require(IERC20Min(config.token).balanceOf(address(this)) - before == amount, "deposit not received");
        channels[channelId].balance += amount;
        emit Deposited(channelId, config.payer, amount);
    }

    /// Claims vouchers as the receiver's authorizer itself.
    function claim(VoucherClaim[] calldata voucherClaims) external {
        for (uint256 i = 0; i < voucherClaims.length; i++) {
            require(msg.sender == voucherClaims[i].voucher.channel.receiverAuthorizer, "not the receiver authorizer");
        }
        _claim(voucherClaims);
    }

    /// Claims vouchers with the receiver authorizer's signature over the batch (anyone submits).
    function claimWithSignature(VoucherClaim[] calldata voucherClaims, bytes calldata authorizerSignature) external {
        bytes32 digest = getClaimBatchDigest(voucherClaims);
        for (uint256 i = 0; i < voucherClaims.length; i++) {
            _requireSigner(voucherClaims[i].voucher.channel.receiverAuthorizer, digest, authorizerSignature);
        }
        _claim(voucherClaims);
    }

    /// Pays `receiver` everything claimed for it in `token` and not yet paid.
    function settle(address receiver, address token) external {
        ReceiverTotals storage totals = receivers[receiver][token];
        uint128 amount = totals.totalClaimed - totals.totalSettled;
        require(amount > 0, "nothing to settle");
        totals.totalSettled = totals.totalClaimed;
        require(IERC20Min(token).transfer(receiver, amount), "transfer failed");
        emit Settled(receiver, token, msg.sender, amount);
    }

    /// The receiver gives back unclaimed balance (at most what is left).
    function refund(ChannelConfig calldata config, uint128 amount) external {
        require(msg.sender == config.receiver || msg.sender == config.receiverAuthorizer, "not the receiver");
        _refund(config, getChannelId(config), amount);
    }

    /// Anyone submits a refund the receiver authorizer signed for this channel's next nonce.
    function refundWithSignature(
        ChannelConfig calldata config,
        uint128 amount,
        uint256 nonce,
        bytes calldata receiverAuthorizerSignature
    ) external {
        bytes32 channelId = getChannelId(config);
        require(nonce == refundNonce[channelId], "wrong refund nonce");
        _requireSigner(config.receiverAuthorizer, getRefundDigest(channelId, nonce, amount), receiverAuthorizerSignature);
        refundNonce[channelId] = nonce + 1;
        _refund(config, channelId, amount);
    }

    /// The payer asks for its unclaimed balance back; it can take it after the withdraw delay.
    function initiateWithdraw(ChannelConfig calldata config, uint128 amount) external {
        require(msg.sender == config.payer, "not the payer");
        bytes32 channelId = getChannelId(config);
        pendingWithdrawals[channelId] = Withdrawal({amount: amount, initiatedAt: uint40(block.timestamp)});
        emit WithdrawInitiated(channelId, amount);
    }

    function finalizeWithdraw(ChannelConfig calldata config) external {
        bytes32 channelId = getChannelId(config);
        Withdrawal memory w = pendingWithdrawals[channelId];
        require(w.initiatedAt != 0, "no withdrawal");
        require(block.timestamp >= uint256(w.initiatedAt) + config.withdrawDelay, "withdraw delay not over");
        delete pendingWithdrawals[channelId];
        _refund(config, channelId, w.amount);
    }

    /// Runs several calls on this contract in one transaction (claim then refund).
    function multicall(bytes[] calldata data) external returns (bytes[] memory results) {
        results = new bytes[](data.length);
        for (uint256 i = 0; i < data.length; i++) {
            (bool ok, bytes memory result) = address(this).delegatecall(data[i]);
            if (!ok) {
                assembly {
                    revert(add(result, 32), mload(result))
                }
            }
            results[i] = result;
        }
    }

    function _claim(VoucherClaim[] calldata voucherClaims) private {
        for (uint256 i = 0; i < voucherClaims.length; i++) {
            VoucherClaim calldata c = voucherClaims[i];
            ChannelConfig calldata config = c.voucher.channel;
            bytes32 channelId = getChannelId(config);
            address voucherSigner = config.payerAuthorizer != address(0) ? config.payerAuthorizer : config.payer;
            _requireSigner(voucherSigner, getVoucherDigest(channelId, c.voucher.maxClaimableAmount), c.signature);
            Channel storage channel = channels[channelId];
            require(c.totalClaimed <= c.voucher.maxClaimableAmount, "claim above the voucher");
            require(c.totalClaimed <= channel.balance, "claim above the balance");
            require(c.totalClaimed > channel.totalClaimed, "nothing new to claim");
            uint128 delta = c.totalClaimed - channel.totalClaimed;
            channel.totalClaimed = c.totalClaimed;
            receivers[config.receiver][config.token].totalClaimed += delta;
            emit Claimed(channelId, config.receiver, c.totalClaimed);
        }
    }

    function _refund(ChannelConfig calldata config, bytes32 channelId, uint128 amount) private {
        Channel storage channel = channels[channelId];
        uint128 available = channel.balance - channel.totalClaimed;
        uint128 paid = amount < available ? amount : available;
        require(paid > 0, "nothing to refund");
        channel.balance -= paid;
        require(IERC20Min(config.token).transfer(config.payer, paid), "transfer failed");
        emit Refunded(channelId, config.payer, paid);
    }

    function _digest(bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    function _requireSigner(address expected, bytes32 digest, bytes calldata signature) private pure {
        require(signature.length == 65, "invalid signature length");
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) v += 27;
        require(uint256(s) <= HALF_CURVE_ORDER, "invalid signature");
        address recovered = ecrecover(digest, v, r, s);
        require(recovered != address(0) && recovered == expected, "invalid signature");
    }
}
