"""The two instrumented services of the lab (scoring and features), the model and its releases."""
