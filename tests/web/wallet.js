// A test EIP-1193 provider: every request goes to the Python wallet bound as window.__gridmartWallet.
(() => {
  window.ethereum = {
    isGridMartTestWallet: true,
    async request({ method, params }) {
      const answer = await window.__gridmartWallet(method, JSON.stringify(params || []));
      if (answer.error) throw Object.assign(new Error(answer.error.message), { code: answer.error.code });
      return answer.result;
    },
    on() {},
    removeListener() {},
  };
})();
