"""Node state: the state machine, the store (nodes, events, reservations), tokens."""
