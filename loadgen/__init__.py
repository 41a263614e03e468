"""Locust traffic whose applicants come from the training distribution, with switchable profiles."""
