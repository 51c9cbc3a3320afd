"""HW4: a chatbot: seq2seq with attention, then reinforcement learning (Li et al. 2016)."""
