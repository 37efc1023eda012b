"""HTTP plumbing both sides share: the error body, the exception handler, the
strict JSON parser and serializer base, API tokens and the token sign-in."""
