"""Scoring a model: the metrics (`metrics`: F1, Hamming loss, MAP, accuracy), decision
thresholds (`decision_thresholds`), statistics over seeds and tables (`report`), which
modalities mattered (`inspection`) and the per-epoch `ValidationMetrics` callback
(`validation_metrics`)."""
