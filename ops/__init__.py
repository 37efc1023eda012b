"""Operations and developer tooling: management commands that run before the
apps can (services reachable, databases created)."""
