"""HW4: a chatbot: seq2seq with attention, then reinforcement learning (Li et al. 2016)."""

HOMEWORK = "hw4_chatbot"
