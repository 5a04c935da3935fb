"""GradNorm (Chen et al. 2018), a preset of DMTL's TDB code: a baseline beyond the paper."""

import keras

from hgfn_keras.multitask.dynamic_task_balancing import DynamicTaskBalancing


@keras.saving.register_keras_serializable(package="hgfn_keras")
class GradNorm(DynamicTaskBalancing):
    """GradNorm (Chen et al. 2018) as a preset of the TDB code: a baseline beyond the paper.

    The same |G_f − Ḡ r_f^α| objective, on the last shared layer, without the
    paper's N / n_f factor and without the epoch-end re-balancing; α = 1.5 and
    Adam(0.025) for the weights, as in the GradNorm paper. Needs a model with a
    last shared layer (`build_model(..., shared_units=...)`, added by default).

    Reference: Chen et al., "GradNorm: Gradient Normalization for Adaptive Loss
    Balancing in Deep Multitask Networks", ICML 2018.
    """

    def __init__(self, alpha=1.5, learning_rate=0.025, grad_norm_layer="shared",
                 rebalance=False, use_sample_ratios=False, optimizer=None, **kwargs):
        if optimizer is None:
            optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        super().__init__(alpha=alpha, learning_rate=learning_rate,
                         grad_norm_layer=grad_norm_layer, rebalance=rebalance,
                         use_sample_ratios=use_sample_ratios, optimizer=optimizer, **kwargs)
