"""Extensions found by discovery, for the tests."""
