"""The options of a bench run, shared by every figure."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Context:
    runs: int = 3
    seconds: float = 5.0
    commands: int = 2000
    latency_samples: int = 300
    append_seconds: float = 3.0
    rebuild_sizes: tuple[int, ...] = (100_000,)
    read_sizes: tuple[int, ...] = (10_000, 1_000_000)
    read_samples: int = 200
    memory_commands: int = 10_000
    sockets: int = 2000
    tokens: dict[str, str] = field(default_factory=dict)
