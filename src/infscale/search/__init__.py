"""Producing candidates: generation engines, sampling and tree search (REBASE, MCTS, beam search, DVTS), the PRM
that scores steps, device placement and checkpointed shards. Imports only from core."""
