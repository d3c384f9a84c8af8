// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// A counter that logs every change: exercises storage, events, return
/// values and revert reasons on gradnet's chain.
contract Counter {
    uint256 public count;

    event Incremented(address indexed by, uint256 newCount);

    function increment(uint256 by) external returns (uint256) {
        require(by > 0, "by must be positive");
        count += by;
        emit Incremented(msg.sender, count);
        return count;
    }
}
