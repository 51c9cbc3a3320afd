"""HW1: an LSTM language model (plus a Kneser-Ney n-gram) for the MSR Sentence Completion test."""

HOMEWORK = "hw1_cloze"
