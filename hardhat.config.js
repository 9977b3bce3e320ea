// GridMart devnet and offline compile.
// Hardhat would download a native solc; instead we point its compiler lookup at the
// pinned npm `solc` (solcjs), so `npx hardhat compile` works without internet.
const { subtask } = require("hardhat/config");
const { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } = require("hardhat/builtin-tasks/task-names");
const solcPkg = require("solc/package.json");
const compilerSettings = require("./contracts/compiler.json");

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args, hre, runSuper) => {
  if (args.solcVersion !== solcPkg.version) return runSuper();
  const solc = require("solc");
  return {
    compilerPath: require.resolve("solc/soljson.js"),
    isSolcJs: true,
    version: solcPkg.version,
    longVersion: solc.version(),
  };
});

/** @type import('hardhat/config').HardhatUserConfig */
module.exports = {
  solidity: {
    version: solcPkg.version,
    settings: compilerSettings,
  },
  paths: {
    sources: "./contracts",
    artifacts: "./.gridmart/hardhat/artifacts",
    cache: "./.gridmart/hardhat/cache",
  },
  networks: {
    hardhat: {
      chainId: 31337,
      hardfork: "cancun",
      // A consortium devnet: gas is measured, but costs nothing, so members need no ether.
      initialBaseFeePerGas: 0,
      gasPrice: 0,
      // Operators and members sign locally; these accounts only fund them on the devnet.
      accounts: { count: 10 },
      mining: { auto: true, interval: 0 },
      // Many transactions a second must not push the chain clock ahead of the wall clock
      // (by default each block is at least 1 s after the previous one).
      allowBlocksWithSameTimestamp: true,
    },
  },
};
