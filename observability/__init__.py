"""Operations support: metrics, traces, structured logs and worker heartbeats.

A leaf package: it imports no app of this project, so that the write side, the
read side and config may all use it.
"""
