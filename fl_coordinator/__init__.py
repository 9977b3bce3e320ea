"""GridMart federated-learning zone (seed 003 §3.4, Phong et al. eqs. 1-5).

Partners train locally and upload homomorphically encrypted updates H(g_i);
the coordinator computes sum p_i * H(g_i) with only the public HE context and
partners decrypt the aggregate. Transport (server/partner), encryption (he),
aggregation rule (strategy), privacy (dp), bookkeeping (service, shares,
ledger) live in separate modules.
"""
