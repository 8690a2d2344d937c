"""Evaluation with TFMA: the EvalConfig per task (`config`) and the custom metrics (`metrics`)
that TFMA loads by module name."""
