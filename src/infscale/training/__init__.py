"""Training: the task tokenizer, policy SFT, PRM data (rollout labels) and PRM training, and the accelerate
launcher. Imports from core and search (rollouts use the engines; PRM training reads step tags as scoring does)."""
