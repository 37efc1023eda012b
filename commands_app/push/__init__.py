"""Pushes to WebSocket clients, after commits.

The channel layer is at-most-once: a push that fails is logged and dropped, and
clients resynchronise from the status endpoint. By what changes together:

- `layer`: the one place that calls the channel layer from synchronous code
  (the push loop, `send_to_group`, `send_to_user`, closing and rechecking a
  user's sockets, the group names);
- `status`: a command's status pushes (final, projected) and import progress;
- `broadcast`: the group pushes that belong to no command: projection lag and
  command stats to staff, stock to the catalogue's sockets.

Callers import the submodule they use; this package re-exports nothing.
"""
