module.exports = { networks: { hardhat: { chainId: 31337, accounts: { count: 100 } } } };
